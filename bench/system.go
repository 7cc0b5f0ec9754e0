package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// System is the machine the run measured.
type System struct {
	Cores    int    `json:"cores"`
	CPU      string `json:"cpu"`
	MemoryMB int    `json:"memory_mb"`
	Kernel   string `json:"kernel"`
	Commit   string `json:"commit"`
}

func systemInfo() System {
	s := System{Cores: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				s.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb int
			if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
				s.MemoryMB = kb / 1024
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		s.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		s.Commit = strings.TrimSpace(string(out))
	}
	return s
}

// Version is one component's version and where it was read.
type Version struct {
	Component string `json:"component"`
	Version   string `json:"version"`
	Source    string `json:"source"`
}

// versions asks each component for its version; a component that does not answer is listed with
// the error, never left out.
func versions(ctx context.Context, c *config, db *sql.DB, comps []component) []Version {
	var vs []Version
	add := func(name, v, src string, err error) {
		if err != nil {
			v = "unknown (" + err.Error() + ")"
		}
		vs = append(vs, Version{name, v, src})
	}
	var pg string
	err := db.QueryRowContext(ctx, `SHOW server_version`).Scan(&pg)
	add("PostgreSQL", pg, "SHOW server_version", err)
	var connect struct {
		Version string `json:"version"`
	}
	err = getJSON(ctx, c.ConnectURL+"/", &connect)
	add("Kafka Connect (and broker: same distribution)", connect.Version, "GET "+c.ConnectURL+"/", err)
	var plugins []struct{ Class, Version string }
	err = getJSON(ctx, c.ConnectURL+"/connector-plugins", &plugins)
	dbz := ""
	for _, p := range plugins {
		if strings.HasSuffix(p.Class, "PostgresConnector") {
			dbz = p.Version
		}
	}
	add("Debezium PostgreSQL connector", dbz, "GET /connector-plugins", err)
	kjar, err := kafkaJarVersion(c.StateDir)
	add("Kafka broker (kafka-server jar)", kjar, "$STATE_DIR/dist/kafka/lib", err)
	var reg struct {
		Name, Version string
	}
	err = getJSON(ctx, strings.TrimSuffix(c.RegistryURL, "/apis/ccompat/v7")+"/apis/registry/v3/system/info", &reg)
	add("Apicurio Registry", reg.Version, "GET /apis/registry/v3/system/info", err)
	for _, cp := range comps {
		if cp.Name == "kafka" || cp.Name == "connect" || cp.Name == "apicurio" {
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cp.PIDs[0]))
			add("JVM of "+cp.Name, filepath.Dir(filepath.Dir(exe)), "/proc/PID/exe", err)
		}
	}
	add("Go (bench, services)", runtime.Version(), "runtime.Version", nil)
	_, lib := kafka.LibraryVersion()
	add("librdkafka (bundled with confluent-kafka-go)", lib, "kafka.LibraryVersion", nil)
	out, err := exec.Command("pgbench", "--version").Output()
	add("pgbench", strings.TrimSpace(string(out)), "pgbench --version", err)
	return vs
}

func kafkaJarVersion(stateDir string) (string, error) {
	m, err := filepath.Glob(filepath.Join(stateDir, "dist", "kafka", "lib", "kafka-server-[0-9]*.jar"))
	if err != nil || len(m) == 0 {
		return "", fmt.Errorf("no kafka-server jar")
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[0]), "kafka-server-"), ".jar"), nil
}

func getJSON(ctx context.Context, url string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// settings are the knobs the figures depend on, read from the running components.
func settings(ctx context.Context, c *config, db *sql.DB) map[string]string {
	s := map[string]string{}
	for _, k := range []string{"synchronous_commit", "wal_writer_delay", "commit_delay", "shared_buffers", "max_connections", "fsync", "wal_level"} {
		var v string
		if err := db.QueryRowContext(ctx, `SELECT current_setting($1)`, k).Scan(&v); err == nil {
			s["postgres "+k] = v
		}
	}
	var cfg map[string]string
	if err := getJSON(ctx, c.ConnectURL+"/connectors/"+c.Connector+"/config", &cfg); err == nil {
		for _, k := range []string{"poll.interval.ms", "max.batch.size", "max.queue.size", "exactly.once.support", "transaction.boundary",
			"producer.override.linger.ms", "producer.override.batch.size", "producer.override.compression.type"} {
			if v, ok := cfg[k]; ok {
				s["connector "+k] = v
			}
		}
	}
	return s
}
