// The rows `flyway migrate` writes for a folder, computed independently of db-init from
// Flyway's documented rules with the JDK's own classes: scripts found recursively, versions
// `V<version>__<description>.sql` compared part by part as BigIntegers, then `R__` repeatables
// by description; description `_` as a space; checksum = java.util.zip.CRC32 over the UTF-8
// bytes of each line as BufferedReader.readLine returns it, a BOM dropped from the first line
// (flyway-core ChecksumCalculator / BomFilter), as a signed int.
// Usage: java scripts/flyway/Expected.java <folder>   (prints rank, version, description,
// type, script, checksum; tab-separated, one row per script).
//        java scripts/flyway/Expected.java --lock-key <schema> <table>   (the advisory lock key of
// PostgreSQLAdvisoryLockTemplate: "Flyway" in the high bytes plus the quoted table's hashCode).
import java.io.*;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import java.util.stream.*;
import java.util.zip.CRC32;

public class Expected {
    record Script(String path, String version, List<BigInteger> parts, String description) {}

    static int checksum(Path file) throws IOException {
        CRC32 crc = new CRC32();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(
                Files.newInputStream(file), StandardCharsets.UTF_8), 4096)) {
            String line = r.readLine();
            if (line != null) {
                if (!line.isEmpty() && line.charAt(0) == '\uFEFF') line = line.substring(1);
                do { crc.update(line.getBytes(StandardCharsets.UTF_8)); } while ((line = r.readLine()) != null);
            }
        }
        return (int) crc.getValue();
    }

    static int compare(List<BigInteger> a, List<BigInteger> b) {
        for (int i = 0; i < Math.max(a.size(), b.size()); i++) {
            BigInteger x = i < a.size() ? a.get(i) : BigInteger.ZERO;
            BigInteger y = i < b.size() ? b.get(i) : BigInteger.ZERO;
            int c = x.compareTo(y);
            if (c != 0) return c;
        }
        return 0;
    }

    public static void main(String[] args) throws IOException {
        if (args[0].equals("--lock-key")) {
            long magic = (0x46L << 40) + (0x6CL << 32) + (0x79L << 24) + (0x77 << 16) + (0x61 << 8) + 0x79;
            String quoted = "\"" + args[1].replace("\"", "\"\"") + "\".\"" + args[2].replace("\"", "\"\"") + "\"";
            System.out.println(magic + quoted.hashCode());
            return;
        }
        Path root = Paths.get(args[0]);
        List<Script> versioned = new ArrayList<>(), repeatable = new ArrayList<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path p : files.filter(Files::isRegularFile).sorted().collect(Collectors.toList())) {
                String name = p.getFileName().toString();
                String rel = root.relativize(p).toString().replace(File.separatorChar, '/');
                if (!name.endsWith(".sql")) continue;
                String stem = name.substring(0, name.length() - 4);
                if (stem.startsWith("R__")) {
                    repeatable.add(new Script(rel, null, null, stem.substring(3).replace('_', ' ')));
                } else if (stem.startsWith("V") && stem.contains("__")) {
                    String v = stem.substring(1, stem.indexOf("__")).replace('_', '.');
                    if (!v.matches("[0-9]+(\\.[0-9]+)*")) continue;
                    List<BigInteger> parts = Arrays.stream(v.split("\\.")).map(BigInteger::new).collect(Collectors.toList());
                    versioned.add(new Script(rel, v, parts, stem.substring(stem.indexOf("__") + 2).replace('_', ' ')));
                }
            }
        }
        versioned.sort((a, b) -> compare(a.parts(), b.parts()));
        repeatable.sort(Comparator.comparing(Script::description));
        int rank = 0;
        for (Script s : Stream.concat(versioned.stream(), repeatable.stream()).collect(Collectors.toList())) {
            rank++;
            System.out.println(rank + "\t" + (s.version() == null ? "" : s.version()) + "\t" + s.description()
                + "\tSQL\t" + s.path() + "\t" + checksum(root.resolve(s.path())));
        }
    }
}
