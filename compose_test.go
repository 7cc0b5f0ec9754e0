package pipeline_test

// The compose file cannot be run here (no Docker engine on the project's machines), so these tests
// check it against the repository instead: versions against the local stack's, environment
// variables against the services' config structs, mounted files against the tree, ports against
// the design, and the start order. A change on either side that is not carried to the other fails.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Target     string `yaml:"target"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Entrypoint  []string                              `yaml:"entrypoint"`
	Command     []string                              `yaml:"command"`
	Environment map[string]string                     `yaml:"environment"`
	Ports       []string                              `yaml:"ports"`
	Volumes     []string                              `yaml:"volumes"`
	DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
}

// oneShot reports whether the service runs once and exits (an init job).
func (s composeService) oneShot() bool { return s.Restart == "no" }

func loadCompose(t *testing.T) (composeFile, string) {
	t.Helper()
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c, string(raw)
}

// stackVar reads NAME=value from scripts/stack.sh, the local stack's source of truth.
func stackVar(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile("scripts/stack.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `=([^\s#]+)`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("scripts/stack.sh sets no %s", name)
	}
	return m[1]
}

// dockerfileFroms returns the images of a Dockerfile's FROM lines (stage names excluded) and its
// stage names.
func dockerfileFroms(t *testing.T, path string) (images, stages []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`).FindAllStringSubmatch(string(raw), -1) {
		if !slices.Contains(stages, m[1]) {
			images = append(images, m[1])
		}
		if m[2] != "" {
			stages = append(stages, m[2])
		}
	}
	return images, stages
}

func imageTag(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return ""
}

func TestComposeImagesPinnedToTheLocalStackVersions(t *testing.T) {
	c, _ := loadCompose(t)
	var images []string
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if s.Image != "" {
			images = append(images, s.Image)
		}
	}
	goImages, goStages := dockerfileFroms(t, "Dockerfile")
	connectImages, _ := dockerfileFroms(t, "docker/connect/Dockerfile")
	images = append(append(images, goImages...), connectImages...)
	pinned := regexp.MustCompile(`^v?[0-9][0-9A-Za-z._-]*$`) // prom/prometheus tags carry a v
	for _, img := range images {
		if tag := imageTag(img); tag == "" || tag == "latest" || !pinned.MatchString(tag) {
			t.Errorf("image %s is not pinned to an explicit version tag", img)
		}
	}

	want := map[string]string{
		"kafka":    "apache/kafka:" + stackVar(t, "KAFKA_VERSION"),
		"registry": "apicurio/apicurio-registry:" + stackVar(t, "APICURIO_VERSION"),
	}
	for svc, img := range want {
		if got := c.Services[svc].Image; got != img {
			t.Errorf("service %s: image %q, want %q (the local stack's version)", svc, got, img)
		}
	}
	if pg := c.Services["postgres"].Image; !strings.HasPrefix(pg, "postgres:"+stackVar(t, "PG_MAJOR")+".") {
		t.Errorf("postgres image %s is not PostgreSQL %s", pg, stackVar(t, "PG_MAJOR"))
	}
	if !slices.Contains(connectImages, "apache/kafka:"+stackVar(t, "KAFKA_VERSION")) {
		t.Errorf("docker/connect/Dockerfile builds on %v, want apache/kafka:%s", connectImages, stackVar(t, "KAFKA_VERSION"))
	}
	connectDF, _ := os.ReadFile("docker/connect/Dockerfile")
	if !strings.Contains(string(connectDF), "ARG DEBEZIUM_VERSION="+stackVar(t, "DEBEZIUM_VERSION")+"\n") {
		t.Errorf("docker/connect/Dockerfile does not install Debezium %s", stackVar(t, "DEBEZIUM_VERSION"))
	}
	if s := c.Services["connect"]; s.Build == nil || filepath.Clean(s.Build.Context) != "docker/connect" {
		t.Errorf("service connect is not built from docker/connect")
	}

	gomod, _ := os.ReadFile("go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindStringSubmatch(string(gomod))
	if goVersion == nil || !slices.Contains(goImages, "golang:"+goVersion[1]+"-bookworm") {
		t.Errorf("Dockerfile builds with %v, want golang:%s (go.mod)", goImages, goVersion)
	}
	for name, s := range c.Services {
		if s.Build != nil && s.Build.Target != "" && !slices.Contains(goStages, s.Build.Target) {
			t.Errorf("service %s builds Dockerfile target %q, which does not exist (stages %v)", name, s.Build.Target, goStages)
		}
	}
}

// envVar is an environment variable a Go program reads, from an `env:"..."` struct tag.
type envVar struct {
	name     string
	required bool
	def      string
}

// programEnv parses the Go files of services/<program> for `env:"NAME,required"` and
// `envDefault:"..."` struct tags (caarlos0/env, the services' configuration), following an
// embedded struct of the same or another package of the module (consumer.EnvConfig,
// kafkaconf.Client's Security) into its directory, and for the variables a program looks up in its
// environment map by name (pipelinectl's environ["SCHEMA_REGISTRY_PASSWORD"]).
func programEnv(t *testing.T, program string) map[string]envVar {
	t.Helper()
	vars := map[string]envVar{}
	envTags(t, filepath.Join("services", program), "", vars)
	return vars
}

// envTags adds to vars the env tags of the structs in dir's Go files (only the struct typeName
// when it is not empty), and those of the module's structs they embed (found by the file's import).
func envTags(t *testing.T, dir, typeName string, vars map[string]envVar) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok && typeName != "" && ts.Name.Name != typeName {
				return false
			}
			if _, ok := n.(*ast.FuncDecl); ok && typeName != "" {
				return false // only the struct typeName's fields, not the signatures of its methods
			}
			if ix, ok := n.(*ast.IndexExpr); ok && typeName == "" {
				if sel, ok := ix.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "environ" {
					if lit, ok := ix.Index.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						name, _ := strconv.Unquote(lit.Value)
						vars[name] = envVar{name: name}
					}
				}
			}
			field, ok := n.(*ast.Field)
			if !ok {
				return true
			}
			if id, ok := field.Type.(*ast.Ident); ok && len(field.Names) == 0 && typeName != "" && id.Name != typeName && id.Obj != nil {
				// an embedded struct declared in the same file (func signatures' unnamed params are no struct)
				if ts, ok := id.Obj.Decl.(*ast.TypeSpec); ok {
					if _, ok := ts.Type.(*ast.StructType); ok {
						envTags(t, dir, id.Name, vars)
					}
				}
			}
			if sel, ok := field.Type.(*ast.SelectorExpr); ok && len(field.Names) == 0 {
				if pkg, ok := sel.X.(*ast.Ident); ok {
					for _, imp := range file.Imports {
						path, _ := strconv.Unquote(imp.Path.Value)
						if rel, ok := strings.CutPrefix(path, "github.com/todocdc/pipeline/"); ok && (imp.Name == nil && filepath.Base(rel) == pkg.Name || imp.Name != nil && imp.Name.Name == pkg.Name) {
							envTags(t, filepath.FromSlash(rel), sel.Sel.Name, vars)
						}
					}
				}
			}
			if field.Tag == nil {
				return true
			}
			tag, err := strconv.Unquote(field.Tag.Value)
			if err != nil {
				return true
			}
			st := reflectTag(tag)
			spec, ok := st["env"]
			if !ok {
				return true
			}
			parts := strings.Split(spec, ",")
			v := envVar{name: parts[0], required: slices.Contains(parts[1:], "required"), def: st["envDefault"]}
			vars[v.name] = v
			return true
		})
	}
}

// reflectTag splits a struct tag into its key:"value" pairs.
func reflectTag(tag string) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+):"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(tag, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// programs are the Go programs of the repository: services/<name>/main.go.
func programs(t *testing.T) []string {
	t.Helper()
	mains, _ := filepath.Glob("services/*/main.go")
	var out []string
	for _, m := range mains {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	if len(out) == 0 {
		t.Fatal("no services/*/main.go")
	}
	return out
}

func TestComposeSetsEveryVariableTheServicesNeed(t *testing.T) {
	c, _ := loadCompose(t)
	built := map[string]bool{}
	for name, s := range c.Services {
		if s.Build == nil || s.Build.Target == "" {
			continue
		}
		built[s.Build.Target] = true
		vars := programEnv(t, s.Build.Target)
		if len(vars) == 0 {
			t.Errorf("service %s: found no env tags in services/%s", name, s.Build.Target)
		}
		for _, v := range vars {
			_, set := c.Services[name].Environment[v.name]
			switch {
			case v.required && !set:
				t.Errorf("service %s: %s is required by services/%s but not set", name, v.name, s.Build.Target)
			case !set && (strings.Contains(v.def, "127.0.0.1") || strings.Contains(v.def, "localhost")):
				// in a container, loopback is the container itself: an address must be set
				t.Errorf("service %s: %s defaults to %q, a loopback address, and is not set", name, v.name, v.def)
			}
		}
		for k, val := range s.Environment {
			if _, known := vars[k]; !known {
				t.Errorf("service %s sets %s, which services/%s does not read", name, k, s.Build.Target)
			}
			if strings.Contains(val, "127.0.0.1") || strings.Contains(val, "localhost") {
				t.Errorf("service %s: %s=%s points at the container itself", name, k, val)
			}
		}
	}
	for _, p := range programs(t) {
		if !built[p] {
			t.Errorf("services/%s is not in docker-compose.yml (no service builds Dockerfile target %q)", p, p)
		}
	}
}

func TestComposeSecretsComeFromTheEnvFile(t *testing.T) {
	_, raw := loadCompose(t)
	example, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, line := range strings.Split(string(example), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			defined[strings.TrimSpace(k)] = true
		}
	}
	refs := regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(raw, -1)
	if len(refs) == 0 {
		t.Fatal("docker-compose.yml takes nothing from .env")
	}
	for _, m := range refs {
		if !defined[m[1]] {
			t.Errorf("docker-compose.yml uses ${%s}, which .env.example does not define", m[1])
		}
	}
	if regexp.MustCompile(`(?m)^\s*[A-Z_]*(PASSWORD|SECRET)[A-Z_]*:\s*[^$\s]`).MatchString(raw) {
		t.Error("docker-compose.yml holds a literal password or secret: take it from .env")
	}
	gi, _ := os.ReadFile(".gitignore")
	if !regexp.MustCompile(`(?m)^/?\.env$`).Match(gi) {
		t.Error(".gitignore does not ignore .env")
	}
}

// The PostgreSQL health check must reach the server over TCP: the image runs its init scripts
// against a temporary server that listens on the Unix socket only, so a check on the socket can
// pass before the real server (restarted after init) is up.
func TestComposePostgresHealthCheckUsesTCP(t *testing.T) {
	c, _ := loadCompose(t)
	pg, ok := c.Services["postgres"]
	if !ok || pg.Healthcheck == nil || len(pg.Healthcheck.Test) == 0 {
		t.Fatal("no postgres service with a health check")
	}
	test := strings.Join(pg.Healthcheck.Test, " ")
	calls := regexp.MustCompile(`\b(pg_isready|psql)\b[^&|;]*`).FindAllString(test, -1)
	if len(calls) == 0 {
		t.Fatalf("the postgres health check runs neither pg_isready nor psql: %q", test)
	}
	for _, call := range calls {
		if !regexp.MustCompile(`(^|\s)(-h|--host)[ =]127\.0\.0\.1(\s|$)`).MatchString(call) {
			t.Errorf("postgres health check %q does not connect with -h 127.0.0.1 (a socket check passes against the init-phase server)", call)
		}
	}
}

func TestComposeMountsExistingFiles(t *testing.T) {
	c, _ := loadCompose(t)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, "./") && !strings.HasPrefix(src, "/") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s mounts volume %q, which is not declared", name, src)
				}
				continue
			}
			if _, err := os.Stat(src); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
	// what the one-shot jobs apply is mounted where pipelinectl looks for it (its working dir /work)
	mounts := strings.Join(append(c.Services["init"].Volumes, c.Services["connectors"].Volumes...), " ")
	for _, dir := range []string{"./topics:/work/topics", "./connectors:/work/connectors"} {
		if !strings.Contains(mounts, dir) {
			t.Errorf("the init jobs do not mount %s", dir)
		}
	}
	// schemas register uses the schemas embedded in pipelinectl: a mount of schemas/ would suggest
	// that an edited schema is registered without a rebuild, and the Dockerfile's comment says so
	if strings.Contains(mounts, "./schemas") {
		t.Error("the init jobs mount ./schemas, which pipelinectl does not read (its schemas are embedded)")
	}
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`mounts[^\n]*schemas/`).Match(df) {
		t.Error("the Dockerfile says compose mounts schemas/ for pipelinectl; they are embedded")
	}
	if files, _ := filepath.Glob("connectors/*.json"); len(files) == 0 {
		t.Error("no connectors/*.json to mount")
	}
}

func TestComposePortsMatchTheDesign(t *testing.T) {
	c, _ := loadCompose(t)
	// DESIGN.md, "Ports on the local stack", as scripts/stack.sh sets them; todo-api's from services.sh
	want := map[string]string{
		"postgres": stackVar(t, "PG_PORT"),
		"kafka":    stackVar(t, "KAFKA_PORT"),
		"registry": stackVar(t, "APICURIO_PORT"),
		"connect":  stackVar(t, "CONNECT_PORT"),
		"todo-api": "8080",
	}
	for svc, port := range want {
		s, ok := c.Services[svc]
		if !ok {
			t.Errorf("no service %s", svc)
			continue
		}
		found := false
		for _, p := range s.Ports {
			if strings.HasPrefix(p, "127.0.0.1:"+port+":") {
				found = true
			}
		}
		if !found {
			t.Errorf("service %s does not publish 127.0.0.1:%s (ports %v)", svc, port, s.Ports)
		}
	}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %s beyond the loopback interface", name, p)
			}
		}
	}
}

func TestComposeHealthChecksAndStartOrder(t *testing.T) {
	c, _ := loadCompose(t)
	for name, s := range c.Services {
		if !s.oneShot() && (s.Healthcheck == nil || len(s.Healthcheck.Test) == 0) {
			t.Errorf("service %s has no health check", name)
		}
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			switch {
			case !ok:
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("service %s waits for %s to be healthy, which has no health check", name, dep)
			case d.Condition == "service_completed_successfully" && !target.oneShot():
				t.Errorf("service %s waits for %s to complete, which is not a one-shot job", name, dep)
			case d.Condition != "service_healthy" && d.Condition != "service_completed_successfully":
				t.Errorf("service %s depends on %s with condition %q: want service_healthy or service_completed_successfully", name, dep, d.Condition)
			}
		}
	}
	// the order scripts/run.sh follows: topics and schemas before todo-api, its migration (the outbox
	// table in the publication) before the connector; the database (slot) before anything writes
	order := map[string][]string{
		"registry":   {"postgres"},
		"init":       {"kafka", "registry"},
		"todo-api":   {"postgres", "registry", "init"},
		"connect":    {"kafka", "postgres"},
		"connectors": {"connect", "todo-api"},
		"notifier":   {"kafka", "registry", "init"},
	}
	for svc, deps := range order {
		for _, dep := range deps {
			if !reachable(c, svc, dep) {
				t.Errorf("service %s does not wait for %s", svc, dep)
			}
		}
	}
	for name := range c.Services {
		if reachableVia(c, name, name, map[string]bool{}) {
			t.Errorf("service %s depends on itself", name)
		}
	}
}

func reachable(c composeFile, from, to string) bool {
	return reachableVia(c, from, to, map[string]bool{})
}

func reachableVia(c composeFile, from, to string, seen map[string]bool) bool {
	for dep := range c.Services[from].DependsOn {
		if dep == to {
			return true
		}
		if !seen[dep] {
			seen[dep] = true
			if reachableVia(c, dep, to, seen) {
				return true
			}
		}
	}
	return false
}

func TestComposePostgresInitMatchesTheLocalStack(t *testing.T) {
	c, _ := loadCompose(t)
	if !slices.Contains(c.Services["postgres"].Volumes, "./docker/postgres/init.sh:/docker-entrypoint-initdb.d/10-todocdc.sh:ro") {
		t.Error("the postgres service does not run docker/postgres/init.sh at init")
	}
	raw, _ := os.ReadFile("docker-compose.yml")
	if !strings.Contains(string(raw), "wal_level=logical") {
		t.Error("postgres does not run with wal_level=logical")
	}
	if !slices.Contains(c.Services["postgres"].Volumes, "./scripts/sql/bootstrap.sql:/bootstrap/bootstrap.sql:ro") {
		t.Error("the postgres service does not mount scripts/sql/bootstrap.sql, which docker/postgres/init.sh runs")
	}
	initSh, err := os.ReadFile("docker/postgres/init.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(initSh), "-f /bootstrap/bootstrap.sql") {
		t.Error("docker/postgres/init.sh does not run /bootstrap/bootstrap.sql")
	}
	stackSh, _ := os.ReadFile("scripts/stack.sh")
	if !strings.Contains(string(stackSh), "scripts/sql/bootstrap.sql") {
		t.Error("scripts/stack.sh does not run scripts/sql/bootstrap.sql")
	}
	// The one bootstrap both use: every role the stack has, each with a password variable that
	// init.sh sets from the compose environment.
	initSQL, err := os.ReadFile("scripts/sql/bootstrap.sql")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]bool{}
	for _, m := range regexp.MustCompile(`'CREATE ROLE (\w+)'`).FindAllStringSubmatch(string(initSQL), -1) {
		roles[m[1]] = true
	}
	if len(roles) < 5 {
		t.Fatalf("found only roles %v in scripts/sql/bootstrap.sql", roles)
	}
	// The consumers' roles, whose passwords scripts/stack.sh generates, are among them.
	if m := regexp.MustCompile(`CONSUMER_ROLES=\(([^)]*)\)`).FindStringSubmatch(string(stackSh)); m != nil {
		for _, r := range strings.Fields(m[1]) {
			if !roles[r] {
				t.Errorf("scripts/sql/bootstrap.sql does not create role %s (scripts/stack.sh's CONSUMER_ROLES)", r)
			}
		}
	}
	for r := range roles {
		env := strings.ToUpper(r) + "_DB_PASSWORD"
		if !strings.Contains(string(raw), env) {
			t.Errorf("docker-compose.yml gives no password for role %s (%s)", r, env)
		}
		if !strings.Contains(string(initSh), "\"$"+env+"\"") {
			t.Errorf("docker/postgres/init.sh passes no password for role %s ($%s)", r, env)
		}
	}
	pub := strings.Index(string(initSQL), "CREATE PUBLICATION todos_outbox")
	slot := strings.Index(string(initSQL), "pg_create_logical_replication_slot('todos_outbox'")
	if pub < 0 || slot < 0 || pub > slot {
		t.Errorf("scripts/sql/bootstrap.sql must create the publication (at %d) before the slot (at %d)", pub, slot)
	}
}

// properties parses a Java properties text: key=value lines, # comments.
func properties(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// stackConnectConfig is the worker config scripts/stack.sh writes (its heredoc), unexpanded.
func stackConnectConfig(t *testing.T) map[string]string {
	t.Helper()
	stack, _ := os.ReadFile("scripts/stack.sh")
	m := regexp.MustCompile(`(?s)cat >"\$CONF_DIR/\$name.properties" <<EOF\n(.*?)\nEOF\n`).FindStringSubmatch(string(stack))
	if m == nil {
		t.Fatal("no Connect worker config in scripts/stack.sh")
	}
	return properties(m[1])
}

func TestConnectWorkersSecurityAndExactlyOnce(t *testing.T) {
	raw, err := os.ReadFile("docker/connect/connect.properties")
	if err != nil {
		t.Fatal(err)
	}
	compose := properties(string(raw))
	stack := stackConnectConfig(t)
	// stack.sh writes some values as a shell expression of BROKERS (1 or 3); compose runs one broker, so
	// the value to compare is the expression's one-broker branch.
	oneBroker := regexp.MustCompile(`^\$\(\(\(BROKERS == 3\) \? [0-9]+ : ([0-9]+)\)\)$`)
	for k, v := range stack {
		if m := oneBroker.FindStringSubmatch(v); m != nil {
			stack[k] = m[1]
		}
	}
	for _, k := range []string{
		"group.id", "exactly.once.source.support", "producer.transaction.timeout.ms",
		"connector.client.config.override.policy", "scheduled.rebalance.max.delay.ms",
		"config.providers.env.class", "config.providers.env.param.allowlist.pattern",
		"offset.storage.topic", "config.storage.topic", "status.storage.topic",
	} {
		if stack[k] == "" || compose[k] != stack[k] {
			t.Errorf("%s: compose worker %q, local stack %q", k, compose[k], stack[k])
		}
	}
	for name, cfg := range map[string]map[string]string{"compose": compose, "local stack": stack} {
		if cfg["exactly.once.source.support"] != "enabled" {
			t.Errorf("%s: exactly-once source support is not enabled", name)
		}
		if cfg["connector.client.config.override.policy"] != "None" {
			t.Errorf("%s: connectors may override client configs", name)
		}
		if _, set := cfg["org.apache.kafka.disallowed.login.modules"]; set {
			t.Errorf("%s: org.apache.kafka.disallowed.login.modules is changed from its safe default", name)
		}
	}
	// Kafka as User:connect: the SASL settings of the worker and its clients, the password by reference
	// to the file of the FileConfigProvider's allowed path (stack.sh's $secrets; compose's start.sh writes
	// it), never literal
	secrets := compose["config.providers.file.param.allowed.paths"]
	if stack["config.providers.file.param.allowed.paths"] != "$secrets" || secrets == "" {
		t.Errorf("file provider paths: compose %q, local stack %q", secrets, stack["config.providers.file.param.allowed.paths"])
	}
	saslKey := regexp.MustCompile(`^((producer|consumer|admin)\.)?(security\.protocol|sasl\.mechanism|sasl\.jaas\.config)$|^config\.providers(\.file\.class)?$`)
	n := 0
	for k, v := range stack {
		if !saslKey.MatchString(k) {
			continue
		}
		n++
		want := strings.ReplaceAll(strings.ReplaceAll(v, `\$`, `$`), "$secrets", secrets)
		if compose[k] != want {
			t.Errorf("%s: compose worker %q, local stack %q", k, compose[k], want)
		}
		if strings.HasSuffix(k, "sasl.jaas.config") && !strings.Contains(compose[k], `password="${file:`+secrets+`/`) {
			t.Errorf("%s: the password is not a ${file:...} reference: %q", k, compose[k])
		}
	}
	if n != 14 {
		t.Errorf("found %d SASL and provider settings in stack.sh's worker config, want 14", n)
	}
	c, _ := loadCompose(t)
	conn := c.Services["connect"]
	if !strings.HasPrefix(conn.Environment["KAFKA_CONNECT_PASSWORD"], "${KAFKA_CONNECT_PASSWORD:") {
		t.Errorf("connect: KAFKA_CONNECT_PASSWORD=%q, want a reference to .env's", conn.Environment["KAFKA_CONNECT_PASSWORD"])
	}
	startSh, err := os.ReadFile("docker/connect/start.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(startSh), `>`+secrets+`/kafka.properties`) || !strings.Contains(string(startSh), "unset KAFKA_CONNECT_PASSWORD") {
		t.Errorf("docker/connect/start.sh does not write %s/kafka.properties and drop the variable", secrets)
	}
	if df, _ := os.ReadFile("docker/connect/Dockerfile"); !strings.Contains(string(df), `ENTRYPOINT ["/bin/sh", "/opt/connect/start.sh"]`) {
		t.Error("the Connect image does not start through docker/connect/start.sh")
	}
	// the providers a worker may use at all (automatic.config.providers): the local stack's
	m := regexp.MustCompile(`-Dorg\.apache\.kafka\.automatic\.config\.providers=(\S+)`).FindStringSubmatch(conn.Environment["KAFKA_OPTS"])
	if m == nil || m[1] != stackVar(t, "CONFIG_PROVIDER_CLASSES") {
		t.Errorf("connect KAFKA_OPTS allows providers %v, local stack %s", m, stackVar(t, "CONFIG_PROVIDER_CLASSES"))
	}

	// the local stack's REST API listens on loopback only ($HOST is 127.0.0.1)
	if stackVar(t, "HOST") != "127.0.0.1" || !strings.HasPrefix(stack["listeners"], "http://$HOST:") {
		t.Errorf("local stack Connect REST listeners %q (HOST=%s): want loopback only", stack["listeners"], stackVar(t, "HOST"))
	}
	all, _ := os.ReadFile("scripts/stack.sh")
	if strings.Contains(string(all)+string(raw), "disallowed.login.modules") {
		t.Error("a worker config touches org.apache.kafka.disallowed.login.modules")
	}

	// every ${env:X} the connector files use is in the compose worker's environment and allowed
	files, _ := filepath.Glob("connectors/*.json")
	allow := regexp.MustCompile(compose["config.providers.env.param.allowlist.pattern"])
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(string(data), -1) {
			if _, ok := c.Services["connect"].Environment[m[1]]; !ok {
				t.Errorf("%s uses ${env:%s}, which the compose connect service does not set", f, m[1])
			}
			if !allow.MatchString(m[1]) {
				t.Errorf("%s uses ${env:%s}, which the worker's allowlist refuses", f, m[1])
			}
		}
	}
}

// TestComposePrometheusMatchesTheLocalStack: compose runs Prometheus with the repository's rules,
// scraping the same jobs as the local stack's (monitoring/prometheus.yml), on 127.0.0.1:9090; Kafka
// and Connect carry the JMX exporter agent on the ports its targets name, with the repository's
// exporter rules.
func TestComposePrometheusMatchesTheLocalStack(t *testing.T) {
	c, _ := loadCompose(t)
	type promConfig struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	load := func(path string) (promConfig, map[string][]string) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var pc promConfig
		if err := yaml.Unmarshal(data, &pc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		jobs := map[string][]string{}
		for _, sc := range pc.ScrapeConfigs {
			jobs[sc.JobName] = []string{}
			for _, st := range sc.StaticConfigs {
				jobs[sc.JobName] = append(jobs[sc.JobName], st.Targets...)
			}
		}
		for _, rf := range pc.RuleFiles {
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), rf)); err != nil {
				t.Errorf("%s: rule file %s: %v", path, rf, err)
			}
		}
		return pc, jobs
	}
	_, local := load("monitoring/prometheus.yml")
	_, compose := load("monitoring/compose/prometheus.yml")
	if !slices.Equal(slices.Sorted(maps.Keys(local)), slices.Sorted(maps.Keys(compose))) {
		t.Errorf("jobs differ: local %v, compose %v", slices.Sorted(maps.Keys(local)), slices.Sorted(maps.Keys(compose)))
	}
	p, ok := c.Services["prometheus"]
	if !ok {
		t.Fatal("no prometheus service")
	}
	if !slices.Contains(p.Command, "--config.file=/etc/prometheus/compose/prometheus.yml") || !slices.Contains(p.Volumes, "./monitoring:/etc/prometheus:ro") {
		t.Errorf("prometheus does not run monitoring/compose/prometheus.yml: command %v, volumes %v", p.Command, p.Volumes)
	}
	if !slices.Contains(p.Ports, "127.0.0.1:9090:9090") {
		t.Errorf("prometheus ports %v, want 127.0.0.1:9090:9090", p.Ports)
	}
	// every target is a compose service, and the JVMs export on the ports their targets name
	agentPort := regexp.MustCompile(`-javaagent:\S+=(\d+):(\S+)`)
	for job, targets := range compose {
		for _, tg := range targets {
			host, port, _ := strings.Cut(tg, ":")
			svc, ok := c.Services[host]
			if !ok {
				t.Errorf("job %s: target %s is no compose service", job, tg)
				continue
			}
			if job != "kafka" && job != "connect" {
				continue
			}
			m := agentPort.FindStringSubmatch(svc.Environment["KAFKA_OPTS"])
			if m == nil || m[1] != port {
				t.Errorf("service %s: KAFKA_OPTS %q has no JMX exporter agent on port %s", host, svc.Environment["KAFKA_OPTS"], port)
				continue
			}
			if !slices.Contains(svc.Volumes, "./monitoring/jmx/"+job+".yml:"+m[2]+":ro") {
				t.Errorf("service %s: the agent's config %s is not monitoring/jmx/%s.yml (volumes %v)", host, m[2], job, svc.Volumes)
			}
		}
	}
}

// heredoc returns the body of the first here-document of file whose opening line matches start (a
// regular expression up to and including "<<EOF"), unexpanded.
func heredoc(t *testing.T, file, start string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)` + start + `\n(.*?)\nEOF\n`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("%s: no here-document after %q", file, start)
	}
	return m[1]
}

// shellLine returns the line of file that matches re (its first submatch), or fails.
func shellLine(t *testing.T, file, re string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)` + re).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("%s: no line matching %q", file, re)
	}
	return m[1]
}

// TestComposeKafkaSecurityMatchesTheLocalStack: the compose broker (docker/kafka/start.sh) runs with the
// security settings scripts/stack.sh's kafka_security_config writes: the same SASL mechanisms and JAAS
// settings, authorizer, allow.everyone.if.no.acl.found=false and super users. Its extra HOST listener
// (the host's 127.0.0.1:9092) requires SASL too, with SCRAM-SHA-512 only.
func TestComposeKafkaSecurityMatchesTheLocalStack(t *testing.T) {
	stack := properties(heredoc(t, "scripts/stack.sh", `kafka_security_config\(\) \{[^\n]*\n(?:[^\n]*\n)*?\s*cat <<EOF`))
	compose := properties(heredoc(t, "docker/kafka/start.sh", `cat >"\$conf" <<EOF`))
	if len(stack) < 10 {
		t.Fatalf("found only %d settings in stack.sh's kafka_security_config", len(stack))
	}
	for k, v := range stack {
		if k == "listener.security.protocol.map" {
			continue
		}
		if compose[k] != v {
			t.Errorf("%s: compose broker %q, local stack %q", k, compose[k], v)
		}
	}
	for k, want := range map[string]string{
		"authorizer.class.name":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"allow.everyone.if.no.acl.found": "false",
		"super.users":                    "User:broker;User:admin",
	} {
		if stack[k] != want {
			t.Errorf("local stack %s=%q, want %q", k, stack[k], want)
		}
	}
	// the JAAS settings reference $plain: the same User:broker login module on both sides
	plainRE := `^\s*plain="(.*)"$`
	if s, c := shellLine(t, "scripts/stack.sh", plainRE), shellLine(t, "docker/kafka/start.sh", plainRE); s != c {
		t.Errorf("User:broker's PLAIN JAAS settings differ: compose %q, local stack %q", c, s)
	}
	if s, c := shellLine(t, "scripts/stack.sh", `^\s*(pw=\$\(env_get KAFKA_BROKER_PASSWORD\))`), shellLine(t, "docker/kafka/start.sh", `^(pw=.*)$`); !strings.Contains(s, "KAFKA_BROKER_PASSWORD") || c != "pw=$KAFKA_BROKER_PASSWORD" {
		t.Errorf("User:broker's password: compose %q, local stack %q: want KAFKA_BROKER_PASSWORD on both", c, s)
	}
	// every listener requires SASL, and offers only mechanisms the local stack's client listener offers
	protocols := map[string]string{}
	for _, e := range strings.Split(compose["listener.security.protocol.map"], ",") {
		l, p, _ := strings.Cut(e, ":")
		protocols[l] = p
	}
	for _, e := range strings.Split(stack["listener.security.protocol.map"], ",") {
		l, p, _ := strings.Cut(e, ":")
		if protocols[l] != p {
			t.Errorf("listener %s: compose %q, local stack %q", l, protocols[l], p)
		}
	}
	clientMechs := strings.Split(stack["listener.name.client.sasl.enabled.mechanisms"], ",")
	for _, l := range strings.Split(compose["listeners"], ",") {
		name, _, _ := strings.Cut(l, "://")
		if p := protocols[name]; p != "SASL_PLAINTEXT" && p != "SASL_SSL" {
			t.Errorf("compose listener %s has protocol %q: want SASL", name, p)
		}
		lower := strings.ToLower(name)
		mechs := compose["listener.name."+lower+".sasl.enabled.mechanisms"]
		if mechs == "" {
			t.Errorf("compose listener %s enables no SASL mechanism", name)
		}
		for _, m := range strings.Split(mechs, ",") {
			if name != "CONTROLLER" && !slices.Contains(clientMechs, m) {
				t.Errorf("compose listener %s offers %s, which the local stack's client listener does not", name, m)
			}
			if compose["listener.name."+lower+"."+strings.ToLower(m)+".sasl.jaas.config"] == "" {
				t.Errorf("compose listener %s offers %s without its JAAS settings", name, m)
			}
		}
	}
	if got := compose["listener.name.host.sasl.enabled.mechanisms"]; got != "SCRAM-SHA-512" {
		t.Errorf("the host's listener offers %q: want SCRAM-SHA-512 only (User:broker's PLAIN stays inside)", got)
	}
	c, _ := loadCompose(t)
	k := c.Services["kafka"]
	if !slices.Equal(k.Entrypoint, []string{"/bin/sh", "/docker/kafka/start.sh"}) || !slices.Contains(k.Volumes, "./docker/kafka:/docker/kafka:ro") {
		t.Errorf("service kafka does not run docker/kafka/start.sh: entrypoint %v, volumes %v", k.Entrypoint, k.Volumes)
	}
	if k.Healthcheck == nil || !strings.Contains(strings.Join(k.Healthcheck.Test, " "), "--command-config /tmp/kafka/broker-client.properties") {
		t.Error("the kafka health check does not authenticate (an anonymous client is refused)")
	}
}

// aclFile is topics/acls.yaml, as far as these tests read it.
type aclFile struct {
	Principals []struct {
		Principal string `yaml:"principal"`
		Grants    []struct {
			Resource   string   `yaml:"resource"`
			Name       string   `yaml:"name"`
			Pattern    string   `yaml:"pattern"`
			Operations []string `yaml:"operations"`
		} `yaml:"grants"`
	} `yaml:"principals"`
}

// TestComposeKafkaPrincipals: each party runs as its own principal: each consumer as the principal
// topics/acls.yaml grants its consumer group, pipelinectl as the operator (the ACL job as admin),
// Connect as User:connect; todo-api has no Kafka credentials. Every principal used is a SCRAM user of
// the kafka-users job (and of the local stack's KAFKA_USERS), its password a .env reference.
func TestComposeKafkaPrincipals(t *testing.T) {
	c, _ := loadCompose(t)
	raw, err := os.ReadFile("topics/acls.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var acls aclFile
	if err := yaml.Unmarshal(raw, &acls); err != nil {
		t.Fatalf("topics/acls.yaml: %v", err)
	}
	groupReaders := map[string][]string{} // group -> principals that may read (join) it
	principals := map[string]bool{}
	for _, p := range acls.Principals {
		principals[p.Principal] = true
		for _, g := range p.Grants {
			if g.Resource == "group" && g.Pattern == "" && slices.Contains(g.Operations, "Read") {
				groupReaders[g.Name] = append(groupReaders[g.Name], p.Principal)
			}
		}
	}
	usersJob, ok := c.Services["kafka-users"]
	if !ok {
		t.Fatal("no kafka-users service")
	}
	users := strings.Fields(usersJob.Environment["KAFKA_USERS"])
	stackUsers := strings.Fields(shellLine(t, "scripts/stack.sh", `^KAFKA_USERS=\(([^)]*)\)`))
	for _, u := range users {
		if !slices.Contains(stackUsers, u) {
			t.Errorf("kafka-users creates %s, which the local stack's KAFKA_USERS %v does not", u, stackUsers)
		}
		v := "KAFKA_" + strings.ToUpper(strings.ReplaceAll(u, "-", "_")) + "_PASSWORD"
		if !strings.HasPrefix(usersJob.Environment[v], "${"+v+":") {
			t.Errorf("kafka-users: %s=%q, want a reference to .env's %s", v, usersJob.Environment[v], v)
		}
		if u != "admin" && !principals["User:"+u] {
			t.Errorf("SCRAM user %s has no grants in topics/acls.yaml", u)
		}
	}
	if !strings.HasPrefix(usersJob.Environment["KAFKA_BROKER_PASSWORD"], "${KAFKA_BROKER_PASSWORD:") ||
		c.Services["kafka"].Environment["KAFKA_BROKER_PASSWORD"] != usersJob.Environment["KAFKA_BROKER_PASSWORD"] {
		t.Error("kafka-users and kafka do not both take User:broker's password from .env's KAFKA_BROKER_PASSWORD")
	}

	consumers := 0
	for name, s := range c.Services {
		user, hasUser := s.Environment["KAFKA_SASL_USERNAME"]
		if name == "todo-api" {
			for k := range s.Environment {
				if strings.HasPrefix(k, "KAFKA_") || strings.HasPrefix(k, "SCHEMA_REGISTRY_USER") || strings.HasPrefix(k, "SCHEMA_REGISTRY_PASS") {
					t.Errorf("todo-api sets %s: it has no Kafka or registry credentials", k)
				}
			}
			continue
		}
		if s.Build == nil || s.Build.Target == "" {
			continue
		}
		vars := programEnv(t, s.Build.Target)
		if _, readsKafka := vars["KAFKA_SASL_USERNAME"]; !readsKafka {
			continue
		}
		if !hasUser {
			t.Errorf("service %s (a Kafka client) has no KAFKA_SASL_USERNAME", name)
			continue
		}
		v := "KAFKA_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_")) + "_PASSWORD"
		if !strings.HasPrefix(s.Environment["KAFKA_SASL_PASSWORD"], "${"+v+":") {
			t.Errorf("service %s: KAFKA_SASL_PASSWORD=%q, want a reference to .env's %s", name, s.Environment["KAFKA_SASL_PASSWORD"], v)
		}
		if !slices.Contains(users, user) {
			t.Errorf("service %s authenticates as %s, which kafka-users does not create", name, user)
		}
		switch {
		case s.Build.Target == "pipelinectl" && name == "acls":
			if user != "admin" {
				t.Errorf("the ACL job runs as %s, want admin", user)
			}
		case s.Build.Target == "pipelinectl":
			if user != "operator" {
				t.Errorf("service %s (pipelinectl) runs as %s, want operator", name, user)
			}
		default: // a consumer: the principal that topics/acls.yaml lets read its group
			consumers++
			group := vars["GROUP_ID"].def
			if g, set := s.Environment["GROUP_ID"]; set {
				group = g
			}
			if group == "" || !slices.Equal(groupReaders[group], []string{"User:" + user}) {
				t.Errorf("service %s runs as User:%s in group %q, which topics/acls.yaml lets %v read", name, user, group, groupReaders[group])
			}
		}
	}
	if consumers < 2 {
		t.Errorf("found %d consumer services with their own principal, want notifier and analytics", consumers)
	}
	if principals["User:todo-api"] {
		t.Error("topics/acls.yaml grants todo-api something: it has no Kafka principal")
	}

	// the ACLs are applied, as admin, before Connect, the consumers and the operator's jobs connect
	a, ok := c.Services["acls"]
	if !ok || !a.oneShot() || !slices.Equal(a.Command, []string{"acls", "apply", "-f", "topics/acls.yaml"}) ||
		a.Build == nil || a.Build.Target != "pipelinectl" || !slices.Contains(a.Volumes, "./topics:/work/topics:ro") {
		t.Fatalf("no one-shot acls service running pipelinectl acls apply -f topics/acls.yaml with topics/ mounted: %+v", a)
	}
	if a.DependsOn["kafka-users"].Condition != "service_completed_successfully" {
		t.Error("the acls job does not wait for the SCRAM users (kafka-users)")
	}
	for _, svc := range []string{"connect", "notifier", "analytics", "init"} {
		if c.Services[svc].DependsOn["acls"].Condition != "service_completed_successfully" {
			t.Errorf("service %s does not wait for the acls job to complete", svc)
		}
	}
}

// TestComposeRegistryWritesByTheOperatorOnly: the compose registry runs with the local stack's
// authentication and authorization settings (as Quarkus environment variables), and the pipelinectl
// jobs log in as its embedded operator.
func TestComposeRegistryWritesByTheOperatorOnly(t *testing.T) {
	stack := properties(heredoc(t, "scripts/stack.sh", `cat >"\$dir/config/application.properties" <<EOF`))
	c, _ := loadCompose(t)
	reg := c.Services["registry"].Environment
	envName := regexp.MustCompile(`[^A-Za-z0-9]`)
	n, operator := 0, ""
	for k, v := range stack {
		if !regexp.MustCompile(`^(apicurio\.authn?\.|quarkus\.oidc\.|quarkus\.http\.auth\.|quarkus\.security\.)`).MatchString(k) {
			continue
		}
		n++
		e := strings.ToUpper(envName.ReplaceAllString(k, "_"))
		if u, ok := strings.CutPrefix(k, "quarkus.security.users.embedded.users."); ok {
			operator = u
			if v != "$reg_pw" || !strings.HasPrefix(reg[e], "${SCHEMA_REGISTRY_PASSWORD:") {
				t.Errorf("%s: compose %q, local stack %q: want the operator's password from SCHEMA_REGISTRY_PASSWORD", e, reg[e], v)
			}
			continue
		}
		if reg[e] != v {
			t.Errorf("registry %s=%q, local stack %s=%q", e, reg[e], k, v)
		}
	}
	if n < 8 || operator == "" || stack["apicurio.auth.role-based-authorization"] != "true" {
		t.Fatalf("found %d auth settings (operator %q) in stack.sh's Apicurio config", n, operator)
	}
	for name, s := range c.Services {
		if s.Build != nil && s.Build.Target == "pipelinectl" && name != "acls" {
			if s.Environment["SCHEMA_REGISTRY_USERNAME"] != operator || s.Environment["SCHEMA_REGISTRY_PASSWORD"] != reg["QUARKUS_SECURITY_USERS_EMBEDDED_USERS_"+strings.ToUpper(operator)] {
				t.Errorf("service %s does not log in to the registry as its operator %s", name, operator)
			}
		}
	}
}
