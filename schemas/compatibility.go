package schemas

import _ "embed"

// Compatibility is compatibility.yaml: the compatibility level of each subject, a default and
// per-subject overrides, applied with the schemas.
//
//go:embed compatibility.yaml
var Compatibility []byte
