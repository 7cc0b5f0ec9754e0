package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/internal/connectors"
)

// listedConnector is one line of `connectors list`.
type listedConnector struct {
	Name     string `json:"name"`
	Class    string `json:"class"`
	State    string `json:"state"`
	Tasks    string `json:"tasks"`
	Worker   string `json:"worker"`
	Declared string `json:"declared_in,omitempty"` // the connectors/*.json file that declares it
}

func (a *app) connectorsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the connectors Connect runs: class, state, tasks, worker, and the file that declares each",
		Long: `list prints one line per connector that Connect runs, with the file of
connectors/*.json that declares it (empty: running but not declared in this
repository), and one line per declared connector that Connect does not run
(state NOT DEPLOYED).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			names, err := c.Connectors(cmd.Context())
			if err != nil {
				return err
			}
			declared := map[string]string{}
			if specs, err := connectors.LoadAll(nil); err == nil {
				for _, s := range specs {
					declared[s.Name] = s.File
				}
			} else {
				a.log.Debug("no declared connectors", "err", err)
			}
			sort.Strings(names)
			var out []listedConnector
			for _, n := range names {
				st, err := c.Status(cmd.Context(), n)
				if err != nil {
					return err
				}
				cfg, err := c.Config(cmd.Context(), n)
				if err != nil {
					return err
				}
				out = append(out, listedConnector{Name: n, Class: cfg["connector.class"], State: st.Connector.State,
					Tasks: taskStates(st), Worker: st.Connector.WorkerID, Declared: declared[n]})
			}
			for n, f := range declared {
				if !slices.Contains(names, n) {
					out = append(out, listedConnector{Name: n, State: "NOT DEPLOYED", Declared: f})
				}
			}
			return a.emit(out, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSTATE\tTASKS\tWORKER\tCLASS\tDECLARED IN")
				for _, l := range out {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, l.State, orDash(l.Tasks), orDash(l.Worker), orDash(l.Class), orDash(l.Declared))
				}
				tw.Flush()
			})
		},
	}
}

func taskStates(st connect.Status) string {
	parts := make([]string, 0, len(st.Tasks))
	for _, t := range st.Tasks {
		parts = append(parts, fmt.Sprintf("%d=%s", t.ID, t.State))
	}
	return strings.Join(parts, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describedConnector is what `connectors describe` shows.
type describedConnector struct {
	Status  connect.Status   `json:"status"`
	Config  connect.Config   `json:"config"`
	Offsets []connect.Offset `json:"offsets"`
}

func (a *app) connectorsDescribeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show one connector in full: state and traces, its config as Connect holds it, committed offsets",
		Long: `describe prints a connector's state, its tasks and workers, the stack trace of
anything FAILED, its config exactly as Connect stores it (secrets appear as
the config provider references they are, e.g. ${env:DEBEZIUM_DB_PASSWORD}),
and the source offsets it committed (for Debezium: the LSN it streamed up to).
It exits 1 when the connector or a task is FAILED, like status.`,
		Example: `  pipelinectl connectors describe todos-outbox
  pipelinectl connectors describe todos-outbox -o json | jq .config`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			var d describedConnector
			if d.Status, err = c.Status(cmd.Context(), names[0]); err != nil {
				return err
			}
			if d.Config, err = c.Config(cmd.Context(), names[0]); err != nil {
				return err
			}
			if d.Offsets, err = c.Offsets(cmd.Context(), names[0]); err != nil {
				return err
			}
			if err := a.emit(d, func(w io.Writer) { printDescribed(w, d) }); err != nil {
				return err
			}
			if f := d.Status.Failure(); f != nil {
				return reported{f}
			}
			return nil
		},
	}
}

func printDescribed(w io.Writer, d describedConnector) {
	fmt.Fprintf(w, "%s: %s\n", d.Status.Name, d.Status.Summary())
	fmt.Fprintf(w, "  connector: %s on %s\n", d.Status.Connector.State, orDash(d.Status.Connector.WorkerID))
	for _, t := range d.Status.Tasks {
		fmt.Fprintf(w, "  task %d: %s on %s\n", t.ID, t.State, orDash(t.WorkerID))
	}
	printTraces(w, d.Status)
	fmt.Fprintln(w, "config:")
	keys := make([]string, 0, len(d.Config))
	for k := range d.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, d.Config[k])
	}
	fmt.Fprintln(w, "offsets:")
	if len(d.Offsets) == 0 {
		fmt.Fprintln(w, "  (none committed)")
	}
	for _, o := range d.Offsets {
		p, _ := json.Marshal(o.Partition)
		v, _ := json.Marshal(o.Offset)
		fmt.Fprintf(w, "  %s: %s\n", p, v)
	}
}
