package main

import (
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
		file             string
		dryRun           bool
		allowDestructive bool
	)
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Create missing topics and bring existing ones to their declared configs",
		Long: `apply compares each declared topic with the cluster:

  - a missing topic is created with its partitions, replication and configs;
  - a config that differs is altered (incremental alter: other configs stay);
  - a partition count below the declared one is raised (only with
    --allow-destructive, see below).

It never deletes a topic, lowers a partition count or changes a replication
factor: such a difference is reported and the command exits 1 (after applying
everything else).

Irreversible changes are reported the same way (NOT APPLIED, exit 1) unless
--allow-destructive is given: lowering retention.ms, retention.bytes,
local.retention.ms/bytes, delete.retention.ms, min.compaction.lag.ms or
max.message.bytes (records beyond the new limit are deleted or refused);
changing cleanup.policy (compaction or deletion removes records at once); and
adding partitions (keys are re-mapped to partitions, so a key's new records
land in another partition than its earlier ones: per-key ordering breaks).
--dry-run shows them; with --allow-destructive they are marked DESTRUCTIVE. On a cluster with fewer brokers than the declared replication
factor, the factor is lowered to the broker count with a warning, and
min.insync.replicas is only set where the replication factor is at least 3.
A second run changes nothing and says so.`,
		Example: `  pipelinectl topics apply
  pipelinectl topics apply --dry-run
  pipelinectl topics apply --dry-run --allow-destructive   # what the flag would change
  pipelinectl topics apply --file topics/topics.yaml -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			declared, err := topics.Load(file)
			if err != nil {
				return err
			}
			admin, err := topics.NewAdmin(a.kafka, a.timeout)
			if err != nil {
				return err
			}
			defer admin.Close()
			plan, err := topics.Apply(cmd.Context(), admin, declared, dryRun, topics.Options{AllowDestructive: allowDestructive})
			if plan.Actions == nil && err != nil {
				return err
			}
			for _, w := range plan.Warnings {
				a.log.Warn(w)
			}
			type result struct {
				topics.Plan
				DryRun           bool   `json:"dry_run"`
				AllowDestructive bool   `json:"allow_destructive"`
				NoOp             bool   `json:"no_op"`
				Error            string `json:"error,omitempty"`
			}
			res := result{Plan: plan, DryRun: dryRun, AllowDestructive: allowDestructive, NoOp: plan.NoOp() && len(plan.Conflicts) == 0}
			if err != nil {
				res.Error = err.Error()
			}
			if perr := a.emit(res, func(w io.Writer) { printPlan(w, plan, dryRun) }); perr != nil {
				return perr
			}
			if err != nil {
				// the result (with the error) is printed: main only sets the exit code
				return reported{err}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", topics.DefaultFile, "topics declaration")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&allowDestructive, strings.TrimPrefix(topics.AllowDestructiveFlag, "--"), false,
		"also apply irreversible changes: lower retention/size limits, change cleanup.policy, add partitions")
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
				mark := ""
				if c.Destructive {
					mark = " (DESTRUCTIVE)"
				}
				ch = append(ch, fmt.Sprintf("%s %s -> %s%s", c.Key, from, c.To, mark))
			}
			fmt.Fprintf(w, "%s: %s: %s\n", act.Topic, verb[act.Kind], strings.Join(ch, ", "))
		case topics.AddPartitions:
			fmt.Fprintf(w, "%s: %s: %d -> %d (DESTRUCTIVE: keys are re-mapped to partitions)\n", act.Topic, verb[act.Kind], act.FromPartitions, act.Partitions)
		}
	}
	for _, c := range p.Conflicts {
		fmt.Fprintf(w, "%s: NOT APPLIED: %s\n", c.Topic, c.Reason)
	}
	destructive := 0
	for _, c := range p.Conflicts {
		if c.Destructive {
			destructive++
		}
	}
	switch {
	case len(p.Conflicts) > 0 && destructive > 0:
		fmt.Fprintf(w, "%d difference(s) not applied, %d of them irreversible (%s applies those)\n",
			len(p.Conflicts), destructive, topics.AllowDestructiveFlag)
	case len(p.Conflicts) > 0:
		fmt.Fprintf(w, "%d difference(s) not applied\n", len(p.Conflicts))
	case p.NoOp():
		fmt.Fprintf(w, "nothing to do: all %d topics are as declared\n", unchanged)
	}
}
