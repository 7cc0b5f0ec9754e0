package serde

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The Confluent wire format: magic byte 0, the schema id as a 4-byte big-endian integer, the body.
const (
	magicByte = 0
	headerLen = 5
)

// appendHeader appends the wire-format header for schema id to buf.
func appendHeader(buf []byte, id int) ([]byte, error) {
	if id < 0 || uint64(id) > math.MaxUint32 {
		return nil, fmt.Errorf("serde: schema id %d does not fit the wire format's 4 bytes", id)
	}
	buf = append(buf, magicByte)
	return binary.BigEndian.AppendUint32(buf, uint32(id)), nil
}

// parseHeader splits wire-format data into its schema id and body.
func parseHeader(data []byte) (id int, body []byte, err error) {
	if len(data) < headerLen {
		return 0, nil, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrNotWireFormat, len(data), headerLen)
	}
	if data[0] != magicByte {
		return 0, nil, fmt.Errorf("%w: magic byte is 0x%02x, want 0x00", ErrNotWireFormat, data[0])
	}
	return int(binary.BigEndian.Uint32(data[1:headerLen])), data[headerLen:], nil
}
