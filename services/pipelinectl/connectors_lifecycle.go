package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/internal/connect"
)

// lifecycleCmd is one of pause, resume, stop, delete: a call to Connect, then a wait for the state
// it leads to.
type lifecycleCmd struct {
	use, short, long, example string
	call                      func(c *connect.Client, ctx context.Context, name string) error
	wait                      func(c *connect.Client, ctx context.Context, name string, d time.Duration) (connect.Status, error)
	done                      string // past tense for the text result
}

func (a *app) connectorsLifecycleCmds() []*cobra.Command {
	specs := []lifecycleCmd{{
		use:   "pause NAME",
		short: "Pause a connector and its tasks, then wait until they are PAUSED",
		long: `pause keeps the connector and its tasks assigned but stops them processing.
The Debezium connector's replication slot stays: PostgreSQL keeps the WAL from
the slot's position on, so do not leave it paused for days. resume continues
where it stopped.`,
		example: "  pipelinectl connectors pause todos-outbox",
		call:    (*connect.Client).Pause,
		wait: func(c *connect.Client, ctx context.Context, n string, d time.Duration) (connect.Status, error) {
			return c.WaitState(ctx, n, connect.StatePaused, d)
		},
		done: "paused",
	}, {
		use:     "resume NAME",
		short:   "Resume a PAUSED or STOPPED connector, then wait until it runs",
		example: "  pipelinectl connectors resume todos-outbox",
		call:    (*connect.Client).Resume,
		wait:    (*connect.Client).WaitResumed,
		done:    "resumed",
	}, {
		use:   "stop NAME",
		short: "Stop a connector (its tasks shut down, its config stays), then wait until it is STOPPED",
		long: `stop shuts the connector's tasks down and keeps its config (state STOPPED).
Offsets can be reset only while a connector is STOPPED; resume starts it again.`,
		example: `  pipelinectl connectors stop todos-outbox
  pipelinectl connectors offsets todos-outbox --reset --yes
  pipelinectl connectors resume todos-outbox`,
		call: (*connect.Client).Stop,
		wait: func(c *connect.Client, ctx context.Context, n string, d time.Duration) (connect.Status, error) {
			return c.WaitState(ctx, n, connect.StateStopped, d)
		},
		done: "stopped",
	}, {
		use:   "delete NAME",
		short: "Delete a connector (its committed offsets stay in Connect's offsets topic)",
		long: `delete removes the connector and its tasks. Its offsets stay in Connect's
offsets topic: applying a connector of the same name later resumes from them.
To start from scratch, stop it and reset its offsets first.`,
		example: "  pipelinectl connectors delete todos-outbox",
		call:    (*connect.Client).Delete,
		done:    "deleted",
	}}
	cmds := make([]*cobra.Command, 0, len(specs))
	for _, s := range specs {
		cmds = append(cmds, a.lifecycle(s))
	}
	return cmds
}

func (a *app) lifecycle(spec lifecycleCmd) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:     spec.use,
		Short:   spec.short,
		Long:    spec.long,
		Example: spec.example,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			if wait <= 0 {
				return usagef("--wait must be positive, got %s", wait)
			}
			name := names[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := spec.call(c, cmd.Context(), name); err != nil {
				return err
			}
			type result struct {
				Name   string          `json:"name"`
				Action string          `json:"action"`
				Status *connect.Status `json:"status,omitempty"`
				Error  string          `json:"error,omitempty"`
			}
			res := result{Name: name, Action: spec.done}
			var werr error
			if spec.wait != nil {
				var s connect.Status
				s, werr = spec.wait(c, cmd.Context(), name, wait)
				res.Status = &s
				if werr != nil {
					res.Error = werr.Error()
				}
			}
			if err := a.emit(res, func(w io.Writer) {
				if res.Status == nil {
					fmt.Fprintf(w, "%s: %s\n", name, spec.done)
					return
				}
				fmt.Fprintf(w, "%s: %s; %s\n", name, spec.done, res.Status.Summary())
				if werr != nil {
					fmt.Fprintf(w, "  error: %s\n", werr)
				}
				printTraces(w, *res.Status)
			}); err != nil {
				return err
			}
			if werr != nil {
				return reported{werr}
			}
			return nil
		},
	}
	if spec.wait != nil {
		cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the connector to reach its state")
	} else {
		wait = time.Minute
	}
	return cmd
}

func (a *app) connectorsOffsetsCmd() *cobra.Command {
	var reset, yes bool
	cmd := &cobra.Command{
		Use:   "offsets NAME",
		Short: "Show a connector's committed offsets; reset them (connector STOPPED, --reset --yes)",
		Long: `offsets prints the source offsets the connector committed (for the Debezium
PostgreSQL connector: the LSN it has streamed up to, per server).

--reset deletes them, so that the connector starts as if new. It is refused
unless the connector is STOPPED (pipelinectl connectors stop NAME) and --yes
confirms it. What a reset means for the Debezium outbox connector: with
snapshot.mode=no_data it resumes from the replication slot's confirmed
position, which PostgreSQL keeps independently of Connect; dropping and
re-creating the slot is what really starts over, and loses every change
made meanwhile.`,
		Example: `  pipelinectl connectors offsets todos-outbox
  pipelinectl connectors offsets todos-outbox -o json
  pipelinectl connectors stop todos-outbox && pipelinectl connectors offsets todos-outbox --reset --yes`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			name := names[0]
			if yes && !reset {
				return usagef("--yes confirms --reset; without --reset there is nothing to confirm")
			}
			if reset && !yes {
				return usagef("--reset deletes every committed offset of %s: add --yes to confirm", name)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			if !reset {
				offs, err := c.Offsets(cmd.Context(), name)
				if err != nil {
					return err
				}
				return a.emit(struct {
					Name    string           `json:"name"`
					Offsets []connect.Offset `json:"offsets"`
				}{name, offs}, func(w io.Writer) {
					if len(offs) == 0 {
						fmt.Fprintf(w, "%s: no committed offsets\n", name)
					}
					for _, o := range offs {
						p, _ := json.Marshal(o.Partition)
						v, _ := json.Marshal(o.Offset)
						fmt.Fprintf(w, "%s: partition %s offset %s\n", name, p, v)
					}
				})
			}
			s, err := c.Status(cmd.Context(), name)
			if err != nil {
				return err
			}
			if s.Connector.State != connect.StateStopped {
				refusal := fmt.Errorf("connector %s is %s, not STOPPED: run 'pipelinectl connectors stop %s' first", name, s.Connector.State, name)
				if err := a.emit(struct {
					Name   string `json:"name"`
					Action string `json:"action"`
					Error  string `json:"error"`
				}{name, "refused", refusal.Error()}, func(w io.Writer) {
					fmt.Fprintf(w, "%s: reset refused: %s\n", name, refusal)
				}); err != nil {
					return err
				}
				return reported{refusal}
			}
			before, err := c.Offsets(cmd.Context(), name)
			if err != nil {
				return err
			}
			msg, err := c.ResetOffsets(cmd.Context(), name)
			if err != nil {
				// an API error (Connect refused the reset) or a transport one: printed as the
				// result, in text and JSON, so a script sees why
				if perr := a.emit(struct {
					Name   string `json:"name"`
					Action string `json:"action"`
					Error  string `json:"error"`
				}{name, "error", err.Error()}, func(w io.Writer) {
					fmt.Fprintf(w, "%s: reset failed: %s\n", name, err)
				}); perr != nil {
					return perr
				}
				return reported{err}
			}
			return a.emit(struct {
				Name    string           `json:"name"`
				Action  string           `json:"action"`
				Removed []connect.Offset `json:"removed"`
				Message string           `json:"message"`
			}{name, "reset", before, msg}, func(w io.Writer) {
				fmt.Fprintf(w, "%s: offsets reset (%d partition(s) removed): %s\n", name, len(before), msg)
			})
		},
	}
	cmd.Flags().BoolVar(&reset, "reset", false, "delete every committed offset (connector must be STOPPED)")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm --reset")
	return cmd
}
