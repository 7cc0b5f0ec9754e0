package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/internal/connectors"
)

func (a *app) connect() (*connect.Client, error) {
	c, err := connect.New(a.connectURL, &http.Client{Timeout: a.timeout})
	if err != nil {
		return nil, usageError{err}
	}
	c.Username, c.Password = a.creds.connectUser, a.creds.connectPassword
	return c, nil
}

func (a *app) connectorsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connectors",
		Short: "Deploy, check and operate Kafka Connect connectors declared in connectors/*.json",
		Example: `  pipelinectl connectors apply
  pipelinectl connectors status todos-outbox
  pipelinectl connectors restart todos-outbox --only-failed
  pipelinectl connectors pause todos-outbox && pipelinectl connectors resume todos-outbox
  pipelinectl connectors offsets todos-outbox -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: group,
	}
	cmd.AddCommand(a.connectorsApplyCmd(), a.connectorsStatusCmd(), a.connectorsRestartCmd())
	cmd.AddCommand(a.connectorsLifecycleCmds()...)
	cmd.AddCommand(a.connectorsOffsetsCmd(), a.connectorsStuckCmd(), a.connectorsSkipCmd())
	cmd.AddCommand(a.connectorsListCmd(), a.connectorsDescribeCmd())
	return cmd
}

func (a *app) connectorsApplyCmd() *cobra.Command {
	var (
		wait   time.Duration
		sets   []string
		files  []string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply [-f FILE.json]... [FILE.json...]",
		Short: "Validate, create or update connectors, and wait until they run",
		Long: `apply deploys each connector file ({"name": ..., "config": {...}}); without
files, every connectors/*.json. For each one it:

  1. asks Connect to validate the config; any error is printed per field and
     the connector is refused: the running one is left untouched (exit 1);
  2. compares it with the running config: an identical one is left alone
     ("unchanged"), else it is written ("created" or "updated");
  3. waits until the connector and all its tasks are RUNNING; a FAILED task
     is reported with its stack trace (exit 1).

Secrets never go in the files: they name the worker's config providers,
e.g. ${env:DEBEZIUM_DB_PASSWORD}, and Connect keeps them unresolved.

--set KEY=VALUE overrides one config key in every file applied, for what
differs between deployments and is no secret (the database host name in
docker-compose.yml, say). A key that looks like a secret (a word of it holds
password, secret, token, credential, jaas, or is a key such as api.key or
sslkey; record keys such as key.converter are fine) is refused unless its
value is a config provider reference: --set 'database.password=${env:VAR}'.

--dry-run does steps 1 and 2 only and says what apply would do ("would
create", "would update" with the keys that differ, "unchanged"); it changes
nothing, and exits 1 only when a config is refused.`,
		Example: `  pipelinectl connectors apply
  pipelinectl connectors apply connectors/todos-outbox.json --wait 5m
  pipelinectl connectors apply -o json | jq '.[].action'
  pipelinectl connectors apply --set database.hostname=postgres
  pipelinectl connectors apply -f connectors/todos-outbox.json --dry-run`,
		Args: args(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, positional []string) error {
			files := append(files, positional...)
			if wait <= 0 {
				return usagef("--wait must be positive, got %s", wait)
			}
			specs, err := loadWithOverrides(files, sets)
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			var (
				results []connectors.Result
				errs    []error
			)
			for _, s := range specs {
				var r connectors.Result
				var err error
				if dryRun {
					r, err = connectors.Plan(cmd.Context(), c, s)
				} else {
					a.log.Info("applying connector; waiting until it runs", "name", s.Name, "file", s.File, "wait", wait)
					r, err = connectors.Apply(cmd.Context(), c, s, wait)
				}
				if err != nil {
					r.Err = err.Error()
					errs = append(errs, err)
				}
				results = append(results, r)
			}
			if err := a.emit(results, func(w io.Writer) {
				for _, r := range results {
					printApplied(w, r)
				}
			}); err != nil {
				return err
			}
			if len(errs) > 0 {
				return reported{errors.Join(errs...)}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for each connector and its tasks to run")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "KEY=VALUE overriding a non-secret config key of every connector applied (repeatable; secrets only as ${env:VAR})")
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "a connector file to apply (repeatable; also as arguments); default connectors/*.json")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and compare only: say what apply would do, change nothing")
	return cmd
}

// loadWithOverrides loads the connector files (every connectors/*.json without any) and sets
// the --set KEY=VALUE overrides in each; a malformed or secret-looking override is a usage error.
func loadWithOverrides(files, sets []string) ([]connectors.Spec, error) {
	overrides := map[string]string{}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--set wants KEY=VALUE, got %q", kv)
		}
		if err := connectors.CheckOverride(k, v); err != nil {
			return nil, usageError{err}
		}
		overrides[k] = v
	}
	specs, err := connectors.LoadAll(files)
	if err != nil {
		return nil, err
	}
	for _, s := range specs {
		for k, v := range overrides {
			s.Config[k] = v
		}
	}
	return specs, nil
}

func printApplied(w io.Writer, r connectors.Result) {
	switch r.Action {
	case connectors.Refused:
		fmt.Fprintf(w, "%s: refused, %d validation error(s); the running connector is left as it is\n", r.Name, len(r.Errors))
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s: %s\n", e.Field, e.Message)
		}
		return
	case "":
		fmt.Fprintf(w, "%s: error: %s\n", r.Name, r.Err)
		return
	}
	action := string(r.Action)
	if r.DryRun && r.Action != connectors.Unchanged {
		action = "would " + strings.TrimSuffix(action, "d") // created -> would create
	}
	line := fmt.Sprintf("%s: %s", r.Name, action)
	if len(r.Changed) > 0 {
		line += " (" + strings.Join(r.Changed, ", ") + ")"
	}
	if r.Status != nil {
		line += "; " + r.Status.Summary()
	}
	fmt.Fprintln(w, line)
	if r.Err != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Err)
		if r.Status != nil {
			printTraces(w, *r.Status)
		}
	}
}

func printTraces(w io.Writer, s connect.Status) {
	if s.Connector.Trace != "" {
		fmt.Fprintf(w, "  connector trace:\n%s\n", indent(s.Connector.Trace, "    "))
	}
	for _, t := range s.Tasks {
		if t.Trace != "" {
			fmt.Fprintf(w, "  task %d trace:\n%s\n", t.ID, indent(t.Trace, "    "))
		}
	}
}

func (a *app) connectorsStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show the state of a connector and its tasks (all connectors without NAME)",
		Long: `status prints each connector's state, its tasks' states and the stack trace
of anything FAILED. It exits 1 when a connector or task is FAILED or the named
connector does not exist.`,
		Example: `  pipelinectl connectors status
  pipelinectl connectors status todos-outbox -o json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if len(names) == 0 {
				if names, err = c.Connectors(cmd.Context()); err != nil {
					return err
				}
			}
			statuses := make([]connect.Status, 0, len(names))
			var failed []error
			for _, n := range names {
				s, err := c.Status(cmd.Context(), n)
				if err != nil {
					return err
				}
				statuses = append(statuses, s)
				if f := s.Failure(); f != nil {
					failed = append(failed, f)
				}
			}
			if err := a.emit(statuses, func(w io.Writer) {
				if len(statuses) == 0 {
					fmt.Fprintln(w, "no connectors")
				}
				for _, s := range statuses {
					fmt.Fprintf(w, "%s: %s (worker %s)\n", s.Name, s.Summary(), s.Connector.WorkerID)
					for _, t := range s.Tasks {
						fmt.Fprintf(w, "  task %d: %s on worker %s\n", t.ID, t.State, t.WorkerID)
					}
					printTraces(w, s)
				}
			}); err != nil {
				return err
			}
			if len(failed) > 0 {
				return reported{errors.Join(failed...)}
			}
			return nil
		},
	}
}

func (a *app) connectorsRestartCmd() *cobra.Command {
	var onlyFailed bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "restart NAME",
		Short: "Restart a connector and its tasks, then wait until they run",
		Example: `  pipelinectl connectors restart todos-outbox
  pipelinectl connectors restart todos-outbox --only-failed`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			if err := c.Restart(cmd.Context(), names[0], onlyFailed); err != nil {
				return err
			}
			s, werr := c.WaitRunning(cmd.Context(), names[0], wait)
			if err := a.emit(s, func(w io.Writer) {
				fmt.Fprintf(w, "%s: restarted; %s\n", names[0], s.Summary())
				printTraces(w, s)
			}); err != nil {
				return err
			}
			if werr != nil {
				return reported{werr}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&onlyFailed, "only-failed", false, "restart only the FAILED connector instance and tasks")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the connector and its tasks to run")
	return cmd
}
