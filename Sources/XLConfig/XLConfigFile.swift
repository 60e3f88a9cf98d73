/// The syntax of an `xl.cfg` file (xl.cfg(5)): settings `KEY = VALUE`, one
/// per line or separated by `;`, where a value is a quoted string ('...' or
/// "..."), a number, or a list `[ value, ... ]` that may span lines and end
/// with a comma; `#` starts a comment. Every value remembers its line so that
/// errors can name it. This layer knows no keys: `XLDomainConfig` gives them
/// meaning.
public struct XLConfigFile: Sendable {
    public indirect enum Value: Sendable, Equatable {
        case string(String)
        case number(Int64)
        case list([Value])
    }

    public struct Setting: Sendable, Equatable {
        public let key: String
        public let value: Value
        public let line: Int
    }

    /// The file's name as errors show it.
    public let path: String
    /// Settings in file order; a key set twice keeps both (the last wins).
    public let settings: [Setting]

    public init(path: String, text: String) throws(XLConfigError) {
        self.path = path
        var parser = Parser(path: path, bytes: Array(text.utf8))
        settings = try parser.parseFile()
    }

    /// The last setting of `key`, as xl reads a repeated key.
    public func setting(_ key: String) -> Setting? {
        settings.last { $0.key == key }
    }
}

/// An error in a configuration, with the file and line it is about.
public struct XLConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let line: Int
    public let message: String

    public init(path: String, line: Int, _ message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String { "\(path):\(line): \(message)" }
}

/// A hand-written recursive-descent parser over the file's bytes: the
/// grammar is small and the errors must be exact.
private struct Parser {
    let path: String
    let bytes: [UInt8]
    var at = 0
    var line = 1
    /// Lists may nest, but a file is not a program: bound the depth.
    static let maxDepth = 8
    static let maxStringBytes = 64 << 10

    init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }

    func error(_ message: String, line: Int? = nil) -> XLConfigError {
        XLConfigError(path: path, line: line ?? self.line, message)
    }

    var current: UInt8? { at < bytes.count ? bytes[at] : nil }

    /// Skips spaces, tabs, comments and (when `newlines`) line ends.
    mutating func skipBlank(newlines: Bool) {
        while let c = current {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") {
                at += 1
            } else if c == UInt8(ascii: "#") {
                while let d = current, d != UInt8(ascii: "\n") { _ = d; at += 1 }
            } else if c == UInt8(ascii: "\n") && newlines {
                at += 1
                line += 1
            } else {
                return
            }
        }
    }

    mutating func parseFile() throws(XLConfigError) -> [XLConfigFile.Setting] {
        var settings: [XLConfigFile.Setting] = []
        while true {
            skipBlank(newlines: true)
            guard let c = current else { return settings }
            if c == UInt8(ascii: ";") { at += 1; continue }
            let settingLine = line
            let key = try identifier()
            skipBlank(newlines: false)
            guard current == UInt8(ascii: "=") else {
                throw error("expected '=' after '\(key)'")
            }
            at += 1
            skipBlank(newlines: false)
            guard current != nil, current != UInt8(ascii: "\n") else {
                throw error("'\(key)' has no value")
            }
            let value = try parseValue(depth: 0)
            settings.append(.init(key: key, value: value, line: settingLine))
            skipBlank(newlines: false)
            switch current {
            case nil: return settings
            case UInt8(ascii: "\n"), UInt8(ascii: ";"): continue
            default: throw error("unexpected '\(printable(current!))' after the value of '\(key)'")
            }
        }
    }

    mutating func identifier() throws(XLConfigError) -> String {
        let start = at
        while let c = current, isIdentifierByte(c, first: at == start) { at += 1 }
        guard at > start else {
            throw error("expected a setting name, found '\(printable(current ?? 0))'")
        }
        return String(decoding: bytes[start..<at], as: UTF8.self)
    }

    func isIdentifierByte(_ c: UInt8, first: Bool) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || c == UInt8(ascii: "_") || (!first && c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    mutating func parseValue(depth: Int) throws(XLConfigError) -> XLConfigFile.Value {
        switch current {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try quoted())
        case UInt8(ascii: "["):
            guard depth < Self.maxDepth else { throw error("lists nest too deeply") }
            at += 1
            var items: [XLConfigFile.Value] = []
            while true {
                skipBlank(newlines: true)
                guard let c = current else { throw error("a list is not closed with ']'") }
                if c == UInt8(ascii: "]") { at += 1; return .list(items) }
                items.append(try parseValue(depth: depth + 1))
                skipBlank(newlines: true)
                switch current {
                case UInt8(ascii: ","): at += 1
                case UInt8(ascii: "]"): continue
                case nil: throw error("a list is not closed with ']'")
                default: throw error("expected ',' or ']' in a list, found '\(printable(current!))'")
                }
            }
        case let c? where c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")):
            return .number(try number())
        case let c?:
            throw error("a value must be a quoted string, a number or a list, not '\(printable(c))'")
        case nil:
            throw error("missing value")
        }
    }

    mutating func quoted() throws(XLConfigError) -> String {
        let quote = bytes[at]
        let startLine = line
        at += 1
        var out: [UInt8] = []
        while true {
            guard let c = current, c != UInt8(ascii: "\n") else {
                throw error("a string is not closed", line: startLine)
            }
            at += 1
            if c == quote { break }
            if c == UInt8(ascii: "\\") {
                guard let e = current, e != UInt8(ascii: "\n") else { throw error("a string is not closed", line: startLine) }
                at += 1
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                default: out.append(e)                  // \\, \', \" and any other byte as itself
                }
            } else {
                out.append(c)
            }
            guard out.count <= Self.maxStringBytes else { throw error("a string is longer than 64 KiB", line: startLine) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func number() throws(XLConfigError) -> Int64 {
        let start = at
        while let c = current, isIdentifierByte(c, first: false) || c == UInt8(ascii: "-") { at += 1 }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        let parsed: Int64? = text.hasPrefix("0x") || text.hasPrefix("0X")
            ? Int64(text.dropFirst(2), radix: 16) : Int64(text)
        guard let n = parsed else { throw error("'\(text)' is not a number") }
        return n
    }

    func printable(_ c: UInt8) -> String {
        c >= 0x20 && c < 0x7f ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
    }
}
