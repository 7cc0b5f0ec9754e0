// Resolve reads cases from stdin, one JSON object a line: {"writer": schema, "reader": schema,
// "body": base64}; and answers one JSON object a line, with Apache Avro's verdicts: "schemaError"
// when a schema does not parse (defaults validated), else "compatible" (SchemaCompatibility, the
// gate's counterpart) and either "value" (GenericData's string form of the datum read with
// GenericDatumReader(writer, reader)) or "decodeError".
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;

public class Resolve {
  public static void main(String[] args) throws Exception {
    ObjectMapper om = new ObjectMapper();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(System.out, true, "UTF-8");
    for (String line; (line = in.readLine()) != null; ) {
      JsonNode c = om.readTree(line);
      ObjectNode r = om.createObjectNode();
      try {
        Schema w = new Schema.Parser().parse(c.get("writer").asText());
        Schema rd = new Schema.Parser().parse(c.get("reader").asText());
        r.put("compatible", SchemaCompatibility.checkReaderWriterCompatibility(rd, w).getType()
            == SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE);
        try {
          byte[] body = Base64.getDecoder().decode(c.get("body").asText());
          BinaryDecoder dec = DecoderFactory.get().binaryDecoder(body, null);
          Object v = new GenericDatumReader<Object>(w, rd).read(null, dec);
          if (!dec.isEnd()) {
            throw new java.io.IOException("bytes left over after the datum");
          }
          r.put("value", GenericData.get().toString(v));
        } catch (Exception | OutOfMemoryError | StackOverflowError e) {
          r.put("decodeError", e.toString());
        }
      } catch (Exception e) {
        r.put("schemaError", e.toString());
      }
      out.println(om.writeValueAsString(r));
    }
  }
}
