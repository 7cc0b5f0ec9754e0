// Package schemas embeds the Avro schemas (.avsc) that the pipeline's events are written with,
// so that services and tools use exactly the files that the compatibility gate checks.
//
// The files at the top are the current version of each record. history/ keeps the text of every
// earlier version that was ever registered, named <Record>.v<N>.avsc: `pipelinectl schemas
// register` registers them in order before the current one, so that a fresh registry holds the
// same versions as one that saw them come one by one, and consumers built with an old version
// have it at hand.
package schemas

import "embed"

// FS holds every .avsc file of this folder and of history/, and compatibility.yaml: the folder as
// the schema commands read it.
//
//go:embed *.avsc history/*.avsc compatibility.yaml
var FS embed.FS

// TodoCreatedV1 is history/TodoCreated.v1.avsc, the first version of TodoCreated: what the tests
// of schema evolution write old events with.
//
//go:embed history/TodoCreated.v1.avsc
var TodoCreatedV1 string
