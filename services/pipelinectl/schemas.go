package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/riferrei/srclient"
	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/compat"
	"github.com/todocdc/pipeline/internal/registry"
	"github.com/todocdc/pipeline/schemas"
)

func (a *app) schemasCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schemas",
		Short: "Check and register the event schemas (schemas/*.avsc) in the Schema Registry",
		Example: `  pipelinectl schemas check
  pipelinectl schemas register`,
		Args: cobra.ArbitraryArgs,
		RunE: group,
	}
	cmd.AddCommand(a.schemasRegisterCmd(), a.schemasCheckCmd())
	return cmd
}

func (a *app) schemasRegisterCmd() *cobra.Command {
	var dir, compatFile string
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register every event schema and set each subject's compatibility level",
		Long: `register registers every .avsc of schemas/ (of the working directory when it
has one, so that an edited file counts before any rebuild; else the copy built into
this binary; --dir reads another folder) under the
subject "` + events.Topic + `-<namespace>.<name>", each after the earlier
versions of its record kept in schemas/history (<Record>.v<N>.avsc, in the
order of N), so that a fresh registry ends with every version; and sets the subject's
compatibility level from schemas/compatibility.yaml (--compatibility reads another file). An identical schema that is already registered keeps its
id and version. A schema the registry refuses (409, incompatible with the
subject's rule) is printed with the registry's message, and the command exits 1
after trying the others.`,
		Example: `  pipelinectl schemas register
  pipelinectl schemas register --compatibility my-compatibility.yaml -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			src, policy, err := a.schemasAndPolicy(dir, compatFile)
			if err != nil {
				return err
			}
			list, err := registry.LoadWithHistory(src, events.Topic)
			if err != nil {
				return err
			}
			for _, s := range policy.Unknown(list) {
				a.log.Warn("compatibility override for a subject no schema has", "subject", s)
			}
			client := a.registryClient()
			client.CachingEnabled(false)
			results, err := registry.Register(cmd.Context(), client, list, policy)
			if results == nil && err != nil {
				return err
			}
			if err != nil && !errors.Is(err, registry.ErrRefused) {
				// the registry failed part-way: the text shows what was done, then main reports
				// the error (with -o json as an error object, not as a partial result list)
				if a.output != "json" {
					printRegistered(a.stdout, results)
				}
				return err
			}
			if perr := a.emit(results, func(w io.Writer) { printRegistered(w, results) }); perr != nil {
				return perr
			}
			if err != nil {
				return reported{err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "read the schemas, their history and compatibility.yaml from this folder (default: schemas/ of the working directory when there is one, else the copy built into this binary)")
	cmd.Flags().StringVar(&compatFile, "compatibility", "", "compatibility levels file (default: compatibility.yaml of the schemas read)")
	return cmd
}

func printRegistered(w io.Writer, results []registry.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tFILE\tID\tVERSION\tLEVEL\tOUTCOME")
	for _, r := range results {
		if r.Outcome == registry.Refused {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t%s\trefused: %s\n", r.Subject, r.File, r.Level, r.Message)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", r.Subject, r.File, r.ID, r.Version, r.Level, r.Outcome)
	}
	tw.Flush()
}

func (a *app) schemasCheckCmd() *cobra.Command {
	var dir, file, subject, compatFile string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check every event schema against the registry under its subject's compatibility level",
		Long: `check is the compatibility gate. It checks each current .avsc of schemas/ (of the
working directory when it has one, so that an edited file counts before any rebuild;
else the copy built into this binary; --dir reads another folder) against what the registry has under its
subject: the latest version, or every version when the subject's level is
*_TRANSITIVE, in the directions the level asks for (BACKWARD: consumers on the new
schema read old events; FORWARD: consumers on old versions read new events; FULL:
both; NONE: nothing). For each incompatibility it prints which field broke which
rule and who could no longer read what, and which deployment order the change
allows (producer first, consumers first, either, none), whatever the level checks.
It also asks the registry for its own verdict on each version and reports both.

A subject with no version yet is new: ok. --schema checks one candidate file
instead, under --subject (default: the subject of the record it defines).

Exit codes: 0 every schema compatible and the registry agrees; 1 an
incompatibility, a disagreement with the registry, or the registry unreachable.`,
		Example: `  pipelinectl schemas check
  pipelinectl schemas check --dir schemas -o json
  pipelinectl schemas check --schema candidate.avsc --subject todos.task.events-com.todos.events.TodoCreated`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if subject != "" && file == "" {
				return usagef("--subject needs --schema")
			}
			if file != "" && dir != "" {
				return usagef("--schema and --dir do not go together")
			}
			src, policy, err := a.schemasAndPolicy(dir, compatFile)
			if err != nil {
				return err
			}
			var list []registry.Schema
			if file != "" {
				list, err = registry.LoadSchemas(singleFile{path: file}, events.Topic)
				if err == nil && subject != "" {
					list[0].Subject = subject
				}
			} else {
				list, err = registry.LoadSchemas(src, events.Topic)
			}
			if err != nil {
				return err
			}
			client := a.registryClient()
			client.CachingEnabled(false) // versions change under the gate
			client.CodecCreationEnabled(false)
			var results []compat.Result
			failed := 0
			for _, s := range list {
				if file != "" {
					s.File = file
				}
				short := s.FullName[strings.LastIndexByte(s.FullName, '.')+1:]
				r, err := compat.Check(client, s.Subject, s.File, short, s.Text)
				if err != nil {
					return err
				}
				if d := policy.Level(s.Subject); r.Status != compat.New && d != r.Level {
					r.DeclaredLevel = d
				}
				if r.Failed() {
					failed++
				}
				results = append(results, r)
			}
			if err := a.emit(results, func(w io.Writer) { printChecked(w, results) }); err != nil {
				return err
			}
			if failed > 0 {
				return reported{fmt.Errorf("%d of %d schemas fail the compatibility gate", failed, len(results))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "read the current schemas from this folder (default: schemas/ of the working directory when there is one, else the copy built into this binary)")
	cmd.Flags().StringVar(&file, "schema", "", "check this one .avsc file instead")
	cmd.Flags().StringVar(&subject, "subject", "", "with --schema: the subject to check it against (default: its record's subject)")
	cmd.Flags().StringVar(&compatFile, "compatibility", "", "compatibility levels file, to report where the registry's level differs from the declared one (default: compatibility.yaml of the schemas read)")
	return cmd
}

// singleFile is an fs.FS holding one file of the OS at its root, for LoadSchemas.
type singleFile struct{ path string }

func (f singleFile) Open(name string) (fs.File, error) {
	if name == "." {
		return os.Open(filepath.Dir(f.path))
	}
	if name != filepath.Base(f.path) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return os.Open(f.path)
}

// Glob matches the file whatever its name: it is the file the user named.
func (f singleFile) Glob(string) ([]string, error) {
	if _, err := os.Stat(f.path); err != nil {
		return nil, err
	}
	return []string{filepath.Base(f.path)}, nil
}

func printChecked(w io.Writer, results []compat.Result) {
	for _, r := range results {
		head := fmt.Sprintf("%s (%s): ", r.Subject, r.File)
		versions := make([]string, len(r.Versions))
		for i, v := range r.Versions {
			versions[i] = strconv.Itoa(v)
		}
		against := fmt.Sprintf("version %s under %s", strings.Join(versions, ", "), r.Level)
		if len(versions) > 1 {
			against = "versions " + against[len("version "):]
		}
		switch r.Status {
		case compat.New:
			fmt.Fprintln(w, head+"new subject, nothing registered yet: ok")
			continue
		case compat.OK:
			if len(r.Versions) == 0 || r.Level == srclient.None {
				fmt.Fprintf(w, "%sok: level %s checks nothing\n", head, r.Level)
			} else {
				fmt.Fprintf(w, "%sok: compatible with %s; the registry agrees\n", head, against)
			}
		case compat.Incompatible:
			fmt.Fprintf(w, "%sINCOMPATIBLE with %s; the registry agrees\n", head, against)
		case compat.Disagreement:
			fmt.Fprintf(w, "%sDISAGREEMENT with the registry, checking %s\n", head, against)
			for _, d := range r.Disagreements {
				fmt.Fprintf(w, "  %s\n", d)
			}
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s\n", p.Message)
		}
		if r.Deploy != "" {
			fmt.Fprintf(w, "  deploy: %s\n", r.Deploy.Describe())
		}
		if r.DeclaredLevel != "" {
			fmt.Fprintf(w, "  note: the registry's level is %s; compatibility.yaml declares %s, which schemas register would set first\n", r.Level, r.DeclaredLevel)
		}
	}
}

// loadPolicy reads the subjects' compatibility levels from file, or from compatibility.yaml of
// src when file is empty.
func loadPolicy(src fs.FS, file string) (registry.Policy, error) {
	var data []byte
	var err error
	if file != "" {
		data, err = os.ReadFile(file)
	} else {
		data, err = fs.ReadFile(src, "compatibility.yaml")
	}
	if err != nil {
		return registry.Policy{}, fmt.Errorf("read compatibility file: %w", err)
	}
	return registry.ParsePolicy(data)
}

// workingSchemas is where schemas check and register look for the schemas by default: the
// repository's folder, relative to the working directory.
const workingSchemas = "schemas"

// schemasAndPolicy is the schema folder (see schemaSource) and the compatibility policy read from
// compatFile, or from that folder when compatFile is empty (see loadPolicy).
func (a *app) schemasAndPolicy(dir, compatFile string) (fs.FS, registry.Policy, error) {
	src, err := a.schemaSource(dir)
	if err != nil {
		return nil, registry.Policy{}, err
	}
	policy, err := loadPolicy(src, compatFile)
	return src, policy, err
}

// schemaSource is the folder the schema commands read: dir when given; else schemas/ of the
// working directory when there is one (an edited .avsc counts at once, not after a rebuild);
// else the copy built into the binary (a container without the repository). Which one, and
// whether it differs from the built-in copy, goes to the log.
func (a *app) schemaSource(dir string) (fs.FS, error) {
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, usagef("--dir %s is not a folder", dir)
		}
		return os.DirFS(dir), nil
	}
	st, err := os.Stat(workingSchemas)
	if err != nil || !st.IsDir() {
		a.log.Info("no schemas/ folder in the working directory: using the schemas built into this binary")
		return schemas.FS, nil
	}
	src := os.DirFS(workingSchemas)
	if diff := differing(src, schemas.FS); len(diff) > 0 {
		a.log.Info("reading schemas/ of the working directory, which differs from the copy built into this binary", "files", strings.Join(diff, ", "))
	}
	return src, nil
}

// differing lists the .avsc and .yaml files that are not the same in a and b.
func differing(a, b fs.FS) []string {
	names := map[string]bool{}
	for _, fsys := range []fs.FS{a, b} {
		for _, pat := range []string{"*.avsc", "history/*.avsc", "*.yaml"} {
			m, _ := fs.Glob(fsys, pat)
			for _, n := range m {
				names[n] = true
			}
		}
	}
	var out []string
	for n := range names {
		x, errA := fs.ReadFile(a, n)
		y, errB := fs.ReadFile(b, n)
		if errA != nil || errB != nil || !bytes.Equal(x, y) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
