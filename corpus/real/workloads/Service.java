// A request loop as a JVM service runs it, under the JVM's default collector
// (G1) and its -Xmx: every --req-ms a "request" makes --garbage-kb of
// short-lived arrays; a bounded cache fills towards --cache-mb with time
// constant --warm-min / 3; after --leak-after-min each request also keeps
// --leak-kb for good. Run from source, as the JRE alone allows:
//   java -Xmx900m corpus/real/workloads/Service.java --name KEY [options]
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public class Service {
    static String name = "";
    static double reqMs = 100, garbageKb = 256, cacheMb = 0, warmMin = 10, leakKb = 0, leakAfterMin = 0;

    static final Map<Integer, long[]> cache = new HashMap<>();
    static final List<long[]> leaked = new ArrayList<>();
    static long cacheBytes = 0;
    static long sink = 0;

    // A long[] holds 8 bytes an element on the Java heap.
    static long[] block(double kb) {
        long[] b = new long[(int) Math.max(1, Math.round(kb * 1024 / 8))];
        b[0] = System.nanoTime();
        return b;
    }

    public static void main(String[] args) throws InterruptedException {
        for (int i = 0; i < args.length; i += 2) {
            if (i + 1 >= args.length) throw new IllegalArgumentException("incomplete option " + args[i]);
            String value = args[i + 1];
            switch (args[i]) {
                case "--name" -> name = value;
                case "--req-ms" -> reqMs = Double.parseDouble(value);
                case "--garbage-kb" -> garbageKb = Double.parseDouble(value);
                case "--cache-mb" -> cacheMb = Double.parseDouble(value);
                case "--warm-min" -> warmMin = Double.parseDouble(value);
                case "--leak-kb" -> leakKb = Double.parseDouble(value);
                case "--leak-after-min" -> leakAfterMin = Double.parseDouble(value);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        long started = System.currentTimeMillis();
        long lastReport = started;
        long served = 0;
        while (true) {
            double minutes = (System.currentTimeMillis() - started) / 60000.0;
            for (double made = 0; made < garbageKb; made += 16) sink += block(16)[0];
            double cacheWanted = cacheMb * 1048576 * (1 - Math.exp(-minutes / (warmMin / 3)));
            while (cacheMb > 0 && cacheBytes + 65536 <= cacheWanted) {
                cache.put(cache.size(), block(64));
                cacheBytes += 65536;
            }
            if (leakKb > 0 && minutes >= leakAfterMin) leaked.add(block(leakKb));
            served++;
            if (System.currentTimeMillis() - lastReport >= 60000) {
                lastReport = System.currentTimeMillis();
                System.err.printf("%s: %d requests, cache %d entries, %d leaked%n", name, served, cache.size(), leaked.size());
            }
            Thread.sleep((long) reqMs);
        }
    }
}
