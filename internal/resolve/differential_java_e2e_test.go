//go:build e2e

package resolve

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// javaCase is a writer schema, a reader schema and a body, run through Apache Avro 1.12.1
// (testdata/java/Resolve.java) and through this package.
type javaCase struct {
	name, writer, reader string
	body                 []byte
	// value, when set, is the datum as Java prints it (GenericData.toString), which must be
	// what Java read; "" when the datum is not compared (or not read).
	value string
	// differs names a difference from Java that this package makes on purpose; the test then
	// checks that the difference is still the one named.
	differs string
	// ours, when set, is what this package's Decode must give.
	ours any
}

// avroJars fetches Apache Avro 1.12.1 and its dependencies from Maven Central (testdata/java/
// pom.xml) into the user's cache folder, once, and returns the folder.
func avroJars(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "todocdc-pipeline", "avro-java-1.12.1")
	if _, err := os.Stat(filepath.Join(dir, "avro-1.12.1.jar")); err == nil {
		return dir
	}
	pom, _ := filepath.Abs(filepath.Join("testdata", "java", "pom.xml"))
	cmd := exec.CommandContext(t.Context(), "mvn", "-q", "-f", pom, "dependency:copy-dependencies", "-DoutputDirectory="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mvn could not fetch Apache Avro 1.12.1 (Maven and Maven Central are needed): %v\n%s", err, out)
	}
	return dir
}

// TestDifferentialJava runs issue 9's examples (section 2) and hostile bodies (section 1) through
// Apache Avro 1.12.1 and checks that this package agrees: the schemas parse or not, the gate
// (Check, Java's SchemaCompatibility) passes the pair or not, the body reads or not, and, where
// given, to the same value. It fails, never skips, without java and mvn.
func TestDifferentialJava(t *testing.T) {
	jars := avroJars(t)
	w := rec("R", fld("a", `"int"`))
	withA := func(f string) string { return rec("R", fld("a", `"int"`), f) }
	cases := []javaCase{
		{name: "union default of a later branch (AVRO-3649)", writer: w, reader: withA(fld("u", `["null","string"]`, `"default":"x"`)),
			body: []byte{2}, value: `{"a": 1, "u": "x"}`, ours: m{"a": int32(1), "u": m{"string": "x"}}},
		// Java takes the first branch whose JSON kind fits (a number: int) and truncates the
		// default to 32 bits; this package takes the first branch the default is a valid value
		// of (long), which is what the specification's "any branch" means.
		{name: "union default too big for the int branch", writer: w, reader: withA(fld("u", `["null","int","long"]`, `"default":5000000000`)),
			body: []byte{2}, value: `{"a": 1, "u": 705032704}`, ours: m{"a": int32(1), "u": m{"long": int64(5000000000)}}},
		{name: "empty union reader field", writer: w, reader: emptyUnionReader, body: []byte{2}},
		{name: "long default out of range", writer: w, reader: withA(fld("l", `"long"`, `"default":9223372036854775808`)), body: []byte{2}},
		{name: "fixed of size 0", writer: withA(fld("z", `{"type":"fixed","name":"Z","size":0}`)), reader: withA(fld("z", `{"type":"fixed","name":"Z","size":0}`)),
			body: []byte{2}},
		{name: "decimal that cannot fit its fixed, against a valid one",
			writer: rec("R", fld("d", `{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":9,"scale":2}`)),
			reader: rec("R", fld("d", `{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":4,"scale":2}`)), body: []byte{1, 2}},
		{name: "record declared as error", writer: `{"type":"error","name":"E","fields":[{"name":"m","type":"string"}]}`,
			reader: `{"type":"error","name":"E","fields":[{"name":"m","type":"string"}]}`, body: []byte{2, 'x'}, value: `{"m": "x"}`},
		{name: "fixed default of one byte written \\u00ff", writer: w, reader: withA(fld("f", `{"type":"fixed","name":"F","size":1}`, `"default":"\u00ff"`)), body: []byte{2}},
		{name: "writer int into reader [long, int]: the writer's own type", writer: `"int"`, reader: `["long","int"]`, body: []byte{2}, value: `1`,
			ours: m{"int": int32(1)}},
		{name: "recursive record renamed field, no alias", writer: `{"type":"record","name":"L","fields":[{"name":"ext","type":["null","L"]}]}`,
			reader: `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`, body: []byte{0}},
		{name: "record that must contain itself", writer: `{"type":"record","name":"R","fields":[{"name":"r","type":"R"}]}`,
			reader: `{"type":"record","name":"R","fields":[{"name":"r","type":"R"}]}`, body: []byte{0},
			differs: "Java parses the schema and fails reading any body (StackOverflowError); this package refuses the schema"},
	}
	for _, h := range hostileCases {
		if h.name == "many_blocks_of_nulls" {
			continue // Java reads 1,000 blocks of 2^28-1 nulls: minutes and gigabytes
		}
		cases = append(cases, javaCase{name: "hostile " + h.name, writer: h.schema, reader: h.schema, body: h.body})
	}

	var in bytes.Buffer
	for _, c := range cases {
		line, _ := json.Marshal(map[string]string{"writer": c.writer, "reader": c.reader, "body": base64.StdEncoding.EncodeToString(c.body)})
		in.Write(append(line, '\n'))
	}
	cmd := exec.CommandContext(t.Context(), "java", "-Xss4m", "-Xmx512m", "-cp", filepath.Join(jars, "*"), filepath.Join("testdata", "java", "Resolve.java"))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for _, c := range cases {
		if !sc.Scan() {
			t.Fatalf("java answered %d cases of %d", len(cases), len(cases))
		}
		var java struct {
			SchemaError, DecodeError, Value string
			Compatible                      bool
		}
		if err := json.Unmarshal(sc.Bytes(), &java); err != nil {
			t.Fatalf("%s: java answered %s: %v", c.name, sc.Text(), err)
		}
		t.Run(c.name, func(t *testing.T) {
			ours := goVerdict(c)
			theirs := verdict{schemaOK: java.SchemaError == "", compatible: java.Compatible, reads: java.SchemaError == "" && java.DecodeError == ""}
			t.Logf("java %s", sc.Text())
			t.Logf("ours %+v", ours)
			if c.differs != "" {
				if ours == theirs {
					t.Fatalf("expected a difference (%s), but both say %+v", c.differs, ours)
				}
				t.Logf("known difference: %s", c.differs)
				return
			}
			if ours.schemaOK != theirs.schemaOK || (ours.schemaOK && (ours.compatible != theirs.compatible || ours.reads != theirs.reads)) {
				t.Fatalf("Java: %+v (%s%s); this package: %+v (%v)", theirs, java.SchemaError, java.DecodeError, ours, ours.err)
			}
			if c.value != "" && java.Value != c.value {
				t.Fatalf("Java read %s, want %s", java.Value, c.value)
			}
			if c.ours != nil {
				p, _ := NewPlan(c.writer, c.reader)
				if got, err := p.Decode(c.body); err != nil || !equalNative(got, c.ours) {
					t.Fatalf("Decode = %s, %v; want %s", show(got), err, show(c.ours))
				}
			}
		})
	}
}

type verdict struct {
	schemaOK, compatible, reads bool
	err                         error
}

// goVerdict is this package's verdict on a case, in Java's terms: a schema Java refuses (not
// valid, or a default that is not a value of its type) is an ErrSchema of NewPlan or Check.
func goVerdict(c javaCase) verdict {
	incs, err := Check(c.writer, c.reader)
	if err != nil {
		return verdict{err: err}
	}
	v := verdict{schemaOK: true, compatible: len(incs) == 0}
	for _, i := range incs {
		if i.Kind == BadDefault {
			return verdict{err: errors.New(i.Rule)}
		}
	}
	p, err := NewPlan(c.writer, c.reader)
	if err == nil {
		_, err = p.Decode(c.body)
	}
	v.reads, v.err = err == nil, err
	return v
}
