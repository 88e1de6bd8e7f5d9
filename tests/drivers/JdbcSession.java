// Scripted session with pgjdbc. Connection from PG* env vars.
// Run: java -cp /usr/share/java/postgresql.jar JdbcSession.java
// Exits 1 with a DRIVER-FAIL line on any mismatch; prints `DRIVER-OK jdbc` when all checks pass.

import java.io.StringReader;
import java.io.StringWriter;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.PGStatement;
import org.postgresql.copy.CopyManager;

public class JdbcSession {
    static final String NAME = "jdbc";
    static final String TABLE = "drv_" + NAME;
    static final String APP = "drv_" + NAME;

    static void fail(String msg) {
        System.err.println("DRIVER-FAIL " + NAME + ": " + msg);
        System.exit(1);
    }

    static void check(boolean cond, String msg) {
        if (!cond) fail(msg);
    }

    interface SqlAction {
        void run() throws SQLException;
    }

    static void expectError(SqlAction action, String sqlstate, String what) {
        try {
            action.run();
        } catch (SQLException e) {
            check(sqlstate.equals(e.getSQLState()),
                what + ": expected SQLSTATE " + sqlstate + ", got " + e.getSQLState() + ": " + e.getMessage());
            return;
        }
        fail(what + ": expected SQLSTATE " + sqlstate + ", got no error");
    }

    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) fail(name + " is not set");
        return v;
    }

    static Connection connect(String applicationName) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", env("PGUSER"));
        p.setProperty("password", env("PGPASSWORD"));
        p.setProperty("ApplicationName", applicationName);
        p.setProperty("connectTimeout", "10");
        String sslmode = System.getenv("PGSSLMODE");
        if (sslmode != null && !sslmode.isEmpty()) {
            p.setProperty("sslmode", sslmode);
            String root = System.getenv("PGSSLROOTCERT");
            if (root != null && !root.isEmpty()) p.setProperty("sslrootcert", root);
            // libpq's "require" does not verify the certificate; pgjdbc would if a root cert existed.
            if (sslmode.equals("require") || sslmode.equals("prefer") || sslmode.equals("allow")) {
                p.setProperty("sslfactory", "org.postgresql.ssl.NonValidatingFactory");
            }
        }
        String url = "jdbc:postgresql://" + env("PGHOST") + ":" + env("PGPORT") + "/" + env("PGDATABASE");
        return DriverManager.getConnection(url, p);
    }

    static List<List<Object>> rows(ResultSet rs) throws SQLException {
        List<List<Object>> out = new ArrayList<>();
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= n; i++) row.add(rs.getObject(i));
            out.add(row);
        }
        return out;
    }

    static long count(Connection c, String sql, Object param) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setObject(1, param);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    static void session() throws Exception {
        Connection conn = connect(APP);
        Connection other = connect(APP + "_notifier");
        conn.setAutoCommit(true);

        try (Statement st = conn.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + TABLE);
            st.execute("CREATE TABLE " + TABLE + "(id int primary key, note text)");
        }

        // Bound parameters, batched: pgjdbc sends Parse/Bind/Execute for each row before one Sync.
        List<List<Object>> expectedRows = Arrays.asList(
            Arrays.asList(1, "one"), Arrays.asList(2, "two \u00fc"), Arrays.asList(3, null));
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + TABLE + "(id, note) VALUES (?, ?)")) {
            for (List<Object> r : expectedRows) {
                ps.setInt(1, (Integer) r.get(0));
                ps.setString(2, (String) r.get(1));
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            check(counts.length == 3, "batch insert counts " + Arrays.toString(counts));
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT id, note FROM " + TABLE + " WHERE id >= ? ORDER BY id")) {
            ps.setInt(1, 1);
            List<List<Object>> got = rows(ps.executeQuery());
            check(got.equals(expectedRows), "select after insert: " + got);
        }

        // A transaction rolled back leaves no row.
        conn.setAutoCommit(false);
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + TABLE + "(id, note) VALUES (?, ?)")) {
            ps.setInt(1, 99);
            ps.setString(2, "ghost");
            ps.executeUpdate();
        }
        long n = count(conn, "SELECT count(*) FROM " + TABLE + " WHERE id = ?", 99);
        check(n == 1, "row 99 not visible inside its transaction (" + n + ")");
        conn.rollback();
        conn.setAutoCommit(true);
        n = count(conn, "SELECT count(*) FROM " + TABLE + " WHERE id = ?", 99);
        check(n == 0, "rolled-back row 99 still present (" + n + ")");

        // prepareThreshold=1: the statement becomes a named server-side statement on first use.
        try (PreparedStatement ps = conn.prepareStatement("SELECT note FROM " + TABLE + " WHERE id = ?")) {
            ps.unwrap(PGStatement.class).setPrepareThreshold(1);
            for (List<Object> r : expectedRows) {
                ps.setInt(1, (Integer) r.get(0));
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "prepared select id=" + r.get(0) + ": no row");
                    check(Objects.equals(rs.getString(1), r.get(1)), "prepared select id=" + r.get(0) + ": " + rs.getString(1));
                }
            }
            check(ps.unwrap(PGStatement.class).isUseServerPrepare(), "statement not server-prepared");
            long named = count(conn, "SELECT count(*) FROM pg_prepared_statements WHERE statement = ? AND name <> ''",
                "SELECT note FROM " + TABLE + " WHERE id = $1");
            check(named == 1, "named prepared statement not on the server (" + named + ")");
        }

        // COPY in both directions through the CopyManager.
        CopyManager copy = conn.unwrap(PGConnection.class).getCopyAPI();
        long copiedIn = copy.copyIn("COPY " + TABLE + " (id, note) FROM STDIN",
            new StringReader("10\tten\n11\televen\\ttab\n"));
        check(copiedIn == 2, "COPY FROM STDIN reported " + copiedIn + " rows");
        StringWriter out = new StringWriter();
        long copiedOut = copy.copyOut("COPY (SELECT id, note FROM " + TABLE + " ORDER BY id) TO STDOUT", out);
        String expected = "1\tone\n2\ttwo \u00fc\n3\t\\N\n10\tten\n11\televen\\ttab\n";
        check(copiedOut == 5 && out.toString().equals(expected), "COPY TO STDOUT (" + copiedOut + " rows): " + out);

        // An error, then the same connection keeps working.
        expectError(() -> {
            try (Statement st = conn.createStatement()) {
                st.executeQuery("SELECT * FROM drv_no_such_table");
            }
        }, "42P01", "missing table");
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
            check(rs.next() && rs.getInt(1) == 1, "select 1 after error");
        }

        // Statement.cancel from another thread sends a CancelRequest.
        long started = System.nanoTime();
        try (Statement st = conn.createStatement()) {
            Thread canceller = new Thread(() -> {
                try {
                    Thread.sleep(500);
                    st.cancel();
                } catch (Exception e) {
                    fail("cancel: " + e);
                }
            });
            canceller.start();
            expectError(() -> st.execute("SELECT pg_sleep(10)"), "57014", "cancelled pg_sleep");
            canceller.join();
        }
        double elapsed = (System.nanoTime() - started) / 1e9;
        check(elapsed < 5, "cancel took " + elapsed + "s");
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT 2")) {
            check(rs.next() && rs.getInt(1) == 2, "select after cancel");
        }

        // LISTEN here, NOTIFY from another connection.
        String channel = TABLE + "_ch";
        try (Statement st = conn.createStatement()) {
            st.execute("LISTEN " + channel);
        }
        try (PreparedStatement ps = other.prepareStatement("SELECT pg_notify(?, ?)")) {
            ps.setString(1, channel);
            ps.setString(2, "hello");
            ps.execute();
        }
        PGNotification[] notes = conn.unwrap(PGConnection.class).getNotifications(5000);
        check(notes != null && notes.length == 1, "notifications: " + (notes == null ? "none" : notes.length));
        check(notes[0].getName().equals(channel) && notes[0].getParameter().equals("hello"),
            "notification: " + notes[0].getName() + " " + notes[0].getParameter());
        try (Statement st = conn.createStatement()) {
            st.execute("UNLISTEN " + channel);
        }

        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SHOW application_name")) {
            check(rs.next(), "SHOW application_name: no row");
            check(APP.equals(rs.getString(1)), "application_name " + rs.getString(1) + " != " + APP);
        }

        try (Statement st = conn.createStatement()) {
            st.execute("DROP TABLE " + TABLE);
        }
        other.close();
        conn.close();
        System.out.println("DRIVER-OK " + NAME);
    }

    public static void main(String[] args) {
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(60_000);
                fail("session took longer than 60 s");
            } catch (InterruptedException e) {
                // the session ended first
            }
        });
        watchdog.setDaemon(true);
        watchdog.start();
        try {
            session();
        } catch (Exception e) {
            fail(e.getClass().getSimpleName() + ": " + e.getMessage());
        }
        System.exit(0);
    }
}
