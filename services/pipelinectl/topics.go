package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/internal/topics"
)

func (a *app) topicsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "topics",
		Short:   "Apply the topics declared in topics/topics.yaml",
		Example: `  pipelinectl topics apply`,
		Args:    cobra.ArbitraryArgs,
		RunE:    group,
	}
	cmd.AddCommand(a.topicsApplyCmd())
	return cmd
}

func (a *app) topicsApplyCmd() *cobra.Command {
	var (
		file   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Create missing topics and bring existing ones to their declared configs",
		Long: `apply compares each declared topic with the cluster:

  - a missing topic is created with its partitions, replication and configs;
  - a config that differs is altered (incremental alter: other configs stay);
  - a partition count below the declared one is raised.

It never deletes a topic, lowers a partition count or changes a replication
factor: such a difference is reported and the command exits 1 (after applying
everything else). On a cluster with fewer brokers than the declared replication
factor, the factor is lowered to the broker count with a warning, and
min.insync.replicas is only set where the replication factor is at least 3.
A second run changes nothing and says so.`,
		Example: `  pipelinectl topics apply
  pipelinectl topics apply --dry-run
  pipelinectl topics apply --file topics/topics.yaml -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			declared, err := topics.Load(file)
			if err != nil {
				return err
			}
			admin, err := topics.NewAdmin(a.bootstrapServers, a.timeout)
			if err != nil {
				return err
			}
			defer admin.Close()
			plan, err := topics.Apply(cmd.Context(), admin, declared, dryRun)
			if plan.Actions == nil && err != nil {
				return err
			}
			for _, w := range plan.Warnings {
				a.log.Warn(w)
			}
			type result struct {
				topics.Plan
				DryRun bool   `json:"dry_run"`
				NoOp   bool   `json:"no_op"`
				Error  string `json:"error,omitempty"`
			}
			res := result{Plan: plan, DryRun: dryRun, NoOp: plan.NoOp() && len(plan.Conflicts) == 0}
			if err != nil {
				res.Error = err.Error()
			}
			if perr := a.emit(res, func(w io.Writer) { printPlan(w, plan, dryRun) }); perr != nil {
				return perr
			}
			if err != nil {
				if errors.Is(err, topics.ErrConflict) {
					return reported{err}
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", topics.DefaultFile, "topics declaration")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	return cmd
}

func printPlan(w io.Writer, p topics.Plan, dryRun bool) {
	verb := map[topics.Kind]string{topics.Create: "created", topics.AlterConfigs: "altered", topics.AddPartitions: "partitions raised"}
	if dryRun {
		verb = map[topics.Kind]string{topics.Create: "would create", topics.AlterConfigs: "would alter", topics.AddPartitions: "would raise partitions"}
	}
	unchanged := 0
	for _, act := range p.Actions {
		switch act.Kind {
		case topics.Unchanged:
			unchanged++
			fmt.Fprintf(w, "%s: unchanged\n", act.Topic)
		case topics.Create:
			var cfg []string
			for _, k := range slices.Sorted(maps.Keys(act.Configs)) {
				cfg = append(cfg, k+"="+act.Configs[k])
			}
			fmt.Fprintf(w, "%s: %s (partitions %d, replication %d; %s)\n", act.Topic, verb[act.Kind],
				act.Partitions, act.ReplicationFactor, strings.Join(cfg, ", "))
		case topics.AlterConfigs:
			var ch []string
			for _, c := range act.Changes {
				from := c.From
				if from == "" {
					from = "(unset)"
				}
				ch = append(ch, fmt.Sprintf("%s %s -> %s", c.Key, from, c.To))
			}
			fmt.Fprintf(w, "%s: %s: %s\n", act.Topic, verb[act.Kind], strings.Join(ch, ", "))
		case topics.AddPartitions:
			fmt.Fprintf(w, "%s: %s: %d -> %d\n", act.Topic, verb[act.Kind], act.FromPartitions, act.Partitions)
		}
	}
	for _, c := range p.Conflicts {
		fmt.Fprintf(w, "%s: NOT APPLIED: %s\n", c.Topic, c.Reason)
	}
	switch {
	case len(p.Conflicts) > 0:
		fmt.Fprintf(w, "%d difference(s) not applied\n", len(p.Conflicts))
	case p.NoOp():
		fmt.Fprintf(w, "nothing to do: all %d topics are as declared\n", unchanged)
	}
}
