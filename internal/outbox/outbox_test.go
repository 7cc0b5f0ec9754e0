package outbox_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/todocdc/pipeline/internal/outbox"
	"github.com/todocdc/pipeline/internal/outbox/outboxtest"
)

func TestValidate(t *testing.T) {
	for _, c := range outboxtest.Cases() {
		err := outbox.Validate(c.Msg)
		if (err == nil) != (c.Constraint == "") {
			t.Errorf("%s: Validate = %v, want refused: %t", c.Name, err, c.Constraint != "")
		}
		if err != nil && !errors.Is(err, outbox.ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", c.Name, err)
		}
	}
	if err := outbox.Validate(outbox.Message{}); err == nil || !strings.Contains(err.Error(), "id is not set") {
		t.Errorf("zero message: %v", err)
	}
}
