using System.Globalization;
using System.Text;

namespace LogEtl;

/// <summary>Writes the sample's access log: deterministic, mostly good lines, and a few malformed ones on purpose.</summary>
public static class AccessLogGenerator
{
    /// <summary>The 1-based lines of the generated log that are malformed, and why.</summary>
    public static IReadOnlyDictionary<int, string> MalformedLines { get; } = new Dictionary<int, string>
    {
        [17] = "truncated JSON",
        [58] = "status is not a number",
        [101] = "not JSON at all",
        [144] = "invalid date",
        [203] = "invalid UTF-8 in the path",
    };

    public const int Lines = 240;

    public static void Write(string path)
    {
        string[] methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
        string[] paths = ["/api/orders/1042", "/api/users/7", "/api/payments/99", "/static/app.js", "/health", "/api/orders"];
        int[] statuses = [200, 200, 200, 201, 204, 301, 404, 500, 502, 503];
        string[] agents = ["Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)", "okhttp/4.12"];
        var random = new Random(20261125);
        var start = new DateTimeOffset(2026, 11, 25, 8, 0, 0, TimeSpan.Zero);
        using var file = File.Create(path);
        for (var line = 1; line <= Lines; line++)
        {
            var time = start.AddMilliseconds(line * 1234).ToString("O", CultureInfo.InvariantCulture);
            var status = statuses[random.Next(statuses.Length)];
            var duration = Math.Round(random.NextDouble() * (status >= 500 ? 2500 : 300), 1).ToString(CultureInfo.InvariantCulture);
            var text = $"{{\"time\":\"{time}\",\"method\":\"{methods[random.Next(methods.Length)]}\",\"path\":\"{paths[random.Next(paths.Length)]}\",\"status\":{status},\"duration_ms\":{duration},\"client\":\"10.0.{random.Next(256)}.{random.Next(256)}\",\"user_agent\":\"{agents[random.Next(agents.Length)]}\"}}";
            byte[] bytes = MalformedLines.TryGetValue(line, out var why) ? Malformed(why, text) : Encoding.UTF8.GetBytes(text);
            file.Write(bytes);
            file.WriteByte((byte)'\n');
        }
    }

    private static byte[] InvalidUtf8InPath(string good)
    {
        var at = good.IndexOf("\"path\":\"", StringComparison.Ordinal) + "\"path\":\"".Length;
        return [.. Encoding.UTF8.GetBytes(good[..at]), 0xC3, 0x28, .. Encoding.UTF8.GetBytes(good[at..])];
    }

    private static byte[] Malformed(string why, string good) => why switch
    {
        "truncated JSON" => Encoding.UTF8.GetBytes(good[..(good.Length / 2)]),
        "status is not a number" => Encoding.UTF8.GetBytes(good.Replace("\"status\":", "\"status\":\"five hundred\",\"was\":", StringComparison.Ordinal)),
        "not JSON at all" => Encoding.UTF8.GetBytes("10.0.0.1 - - [25/Nov/2026:08:02:04 +0000] \"GET /api/orders HTTP/1.1\" 500 512"),
        "invalid date" => Encoding.UTF8.GetBytes(good.Replace("\"time\":\"2026-11-25T", "\"time\":\"2026-13-45T", StringComparison.Ordinal)),
        _ => InvalidUtf8InPath(good),
    };
}
