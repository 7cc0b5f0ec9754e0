// Package schemas embeds the Avro schemas (.avsc) that the pipeline's events are written with,
// so that services and tools use exactly the files that the compatibility gate checks.
package schemas

import "embed"

// FS holds every .avsc file of this folder.
//
//go:embed *.avsc
var FS embed.FS
