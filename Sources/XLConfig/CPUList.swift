/// Linux CPU lists ("0-3,6"), as cpusets and xl's `cpus` write them.
public enum CPUList {
    public static func parse(_ text: String) -> [Int]? {
        var cpus: Set<Int> = []
        for part in text.split(separator: ",") {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count <= 2, let low = Int(ends[0]), let high = Int(ends.last!), low >= 0, low <= high, high < 4096 else {
                return nil
            }
            cpus.formUnion(low...high)
        }
        return cpus.isEmpty ? nil : cpus.sorted()
    }

    public static func format(_ cpus: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        let s = cpus.sorted()
        while i < s.count {
            var j = i
            while j + 1 < s.count && s[j + 1] == s[j] + 1 { j += 1 }
            parts.append(i == j ? String(s[i]) : "\(s[i])-\(s[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }
}
