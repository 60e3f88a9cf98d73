import Foundation
import Testing

/// docs/openapi.json against the real xenod: the routes it documents are
/// exactly those xenod serves, and every documented operation answers with
/// a documented status and a body of the documented shape.
@Suite("docs/openapi.json matches xenod", .serialized)
struct OpenAPITests {
    static let documentPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/openapi.json").path

    struct Operation {
        let method: String
        let path: String
        let spec: [String: Any]
        var responses: [String: Any] { spec["responses"] as? [String: Any] ?? [:] }
        var example: Any? {
            let content = (spec["requestBody"] as? [String: Any])?["content"] as? [String: Any]
            return (content?["application/json"] as? [String: Any])?["example"]
        }
        /// The document marks operations after which the domain is gone.
        var ends: Bool { spec["x-ends-domain"] as? Bool ?? false }
        var id: String { "\(method) \(path)" }
    }

    let document: [String: Any]
    let operations: [Operation]

    init() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.documentPath))
        document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var ops: [Operation] = []
        for (path, item) in paths {
            for (key, value) in item as? [String: Any] ?? [:] where ["get", "put", "post", "delete", "patch"].contains(key) {
                ops.append(Operation(method: key.uppercased(), path: path, spec: value as? [String: Any] ?? [:]))
            }
        }
        operations = ops.sorted { ($0.ends ? 1 : 0, $0.path, $0.method) < ($1.ends ? 1 : 0, $1.path, $1.method) }
    }

    // MARK: The checker: a subset of JSON Schema, as OpenAPI 3.0 uses it.

    func resolve(_ schema: [String: Any]) -> [String: Any] {
        guard let ref = schema["$ref"] as? String, ref.hasPrefix("#/components/schemas/") else { return schema }
        let schemas = (document["components"] as? [String: Any])?["schemas"] as? [String: Any]
        return schemas?[String(ref.dropFirst(21))] as? [String: Any] ?? ["unresolved": ref]
    }

    /// What is wrong with `value` under `schema` (empty: nothing).
    func problems(_ value: Any, _ schemaIn: [String: Any], at where_: String = "$") -> [String] {
        let schema = resolve(schemaIn)
        if let ref = schema["unresolved"] { return ["\(where_): unresolved \(ref)"] }
        var out: [String] = []
        switch schema["type"] as? String {
        case "object":
            guard let object = value as? [String: Any] else { return ["\(where_): not an object"] }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { out.append("\(where_).\(key): missing") }
            for (key, v) in object {
                if let p = properties[key] as? [String: Any] { out += problems(v, p, at: "\(where_).\(key)") }
                else if schema["additionalProperties"] as? Bool == false { out.append("\(where_).\(key): not documented") }
            }
        case "array":
            guard let array = value as? [Any] else { return ["\(where_): not an array"] }
            if let items = schema["items"] as? [String: Any] {
                for (i, v) in array.enumerated() { out += problems(v, items, at: "\(where_)[\(i)]") }
            }
        case "string":
            guard let s = value as? String else { return ["\(where_): not a string"] }
            if let allowed = schema["enum"] as? [String], !allowed.contains(s) { out.append("\(where_): '\(s)' not in \(allowed)") }
        case "integer":
            guard !(value is String), let n = value as? NSNumber, n.doubleValue == n.doubleValue.rounded() else {
                return ["\(where_): not an integer (\(value))"]
            }
        case "number":
            guard !(value is String), value is NSNumber else { return ["\(where_): not a number"] }
        case "boolean":
            guard value is Bool else { return ["\(where_): not a boolean"] }
        default:
            out.append("\(where_): schema without a type the checker knows: \(schema)")
        }
        return out
    }

    /// Checks an answer against the operation's documented responses; the problems found.
    func check(_ op: Operation, _ answer: TLSDaemon.Answer, expecting status: Int) -> [String] {
        guard answer.status == status else {
            return ["\(op.id): status \(answer.status), expected \(status): \(answer.body.prefix(300))"]
        }
        guard let response = op.responses[String(status)] as? [String: Any] else { return ["\(op.id): \(status) is not documented"] }
        let content = response["content"] as? [String: Any] ?? [:]
        let contentType = answer.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-type:") }
            .map { $0.dropFirst(13).trimmingCharacters(in: .whitespaces) } ?? ""
        guard let (mediaType, media) = content.first(where: { contentType.hasPrefix($0.key) }) else {
            return ["\(op.id) \(status): Content-Type '\(contentType)' is not among \(Array(content.keys))"]
        }
        let schema = (media as? [String: Any])?["schema"] as? [String: Any] ?? [:]
        if mediaType == "application/json" {
            guard let json = answer.json else { return ["\(op.id) \(status): body is not JSON: \(answer.body.prefix(200))"] }
            return problems(json, schema).map { "\(op.id) \(status): \($0)" }
        }
        return answer.body.isEmpty ? ["\(op.id) \(status): empty body"] : []
    }

    // MARK: Tests

    @Test("the document's routes are exactly xenod's (xenod --routes), every $ref resolves, every operation documents 401")
    func routesMatch() throws {
        let binary = URL(fileURLWithPath: Xeno.binary).deletingLastPathComponent().path + "/xenod"
        let r = try Tool.run(binary, ["--routes"], timeout: 20)
        #expect(r.status == 0)
        let served = Set(r.stdout.split(separator: "\n").map(String.init))
        let documented = Set(operations.map(\.id))
        #expect(served == documented, "served, not documented: \(served.subtracting(documented)); documented, not served: \(documented.subtracting(served))")
        #expect(served.count >= 8)
        for op in operations {
            #expect(op.responses["401"] != nil, "\(op.id) does not document 401")
            #expect(op.responses.keys.contains { $0.hasPrefix("2") }, "\(op.id) documents no success")
            for (status, response) in op.responses {
                for (_, media) in ((response as? [String: Any])?["content"] as? [String: Any]) ?? [:] {
                    let schema = resolve((media as? [String: Any])?["schema"] as? [String: Any] ?? [:])
                    #expect(schema["unresolved"] == nil && schema["type"] != nil, "\(op.id) \(status): \(schema)")
                }
            }
        }
    }

    @Test("paths and methods not in the document are refused: 404, or 405 with Allow", .enabled(if: httpsToolsPresent, "needs curl and openssl (scripts/setup.sh installs them)"))
    func undocumentedRoutes() throws {
        let daemon = try TLSDaemon()
        for path in ["/", "/v1", "/v2/domains", "/v1/domains/x/frobnicate", "/v1/domains/x/y/z", "/v1/domains/", "/metrics/x", "/v1/routes"] {
            let r = try daemon.curl("GET", path, token: daemon.token)
            #expect(r.status == 404 && (r.json as? [String: Any])?["error"] is String, "GET \(path): \(r.status)")
        }
        let pathsDocumented = Dictionary(grouping: operations, by: \.path)
        for (path, ops) in pathsDocumented {
            let concrete = path.replacingOccurrences(of: "{name}", with: "nosuch")
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] where !ops.contains(where: { $0.method == method }) {
                let r = try daemon.curl(method, concrete, token: daemon.token)
                let allow = ops.map(\.method).sorted()
                #expect(r.status == 405, "\(method) \(path): \(r.status)")
                let header = r.headers.split(separator: "\r\n").first { $0.hasPrefix("Allow:") }
                let listed = header.map { $0.dropFirst(6).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.sorted() }
                #expect(listed == allow, "\(method) \(path): Allow \(String(describing: header))")
            }
        }
    }

    @Test("every documented operation answers as documented: success, unknown domain, bad body, no token",
          .enabled(if: httpsToolsPresent, "needs curl and openssl (scripts/setup.sh installs them)"),
          .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
          .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
    func operationsAnswerAsDocumented() throws {
        let daemon = try TLSDaemon()
        var serial = 0
        var live: String?
        var lastCreate: TLSDaemon.Answer?
        func create() throws -> String {
            serial += 1
            let name = "doc\(serial)"
            let config = """
            name = "\(name)"
            memory = 256
            vcpus = 1
            maxvcpus = 4
            kernel = "\(kitDirectory)/vmlinuz"
            ramdisk = "\(kitDirectory)/initrd.img"
            extra = "console=hvc0"
            """
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["config": config, "path": "\(name).cfg"]), as: UTF8.self)
            let r = try daemon.curl("POST", "/v1/domains", token: daemon.token, body: body)
            guard r.status == 201 else { throw ProbeError("create \(name): \(r.status) \(r.body)") }
            lastCreate = r
            return name
        }
        var failures: [String] = []
        var saveFiles: [String] = []
        defer { for f in saveFiles { unlink(f) } }
        live = try create()          // so that lists and metrics have a domain to show
        for op in operations {
            // Operations on a domain get a running one; those that end it get one of their own.
            if op.path.contains("{name}") && (live == nil || op.ends) { live = try create() }
            let concrete = op.path.replacingOccurrences(of: "{name}", with: live ?? "")
            var body = try op.example.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
            // Save and restore name a file: one of the test's own. A restore
            // needs an image, made by saving a domain of its own first.
            if op.id == "POST /v1/domains/{name}/save" || op.id == "POST /v1/restore" {
                // A guest suspends once its kernel is up (Linux does not
                // take a suspend request during its boot).
                func ready(_ name: String) throws {
                    let console = daemon.directory + "/run/\(name).console"
                    let deadline = Date().addingTimeInterval(180)
                    while !((try? String(contentsOfFile: console, encoding: .utf8)) ?? "").contains("XENOLITH-READY") {
                        guard Date() < deadline else { throw ProbeError("\(name) did not boot: \(console)") }
                        usleep(200_000)
                    }
                }
                if op.id.hasSuffix("/save"), let live { try ready(live) }
                let file = NSTemporaryDirectory() + "xeno-openapi-\(getpid())-\(serial).save"
                saveFiles.append(file)
                body = try JSONSerialization.data(withJSONObject: ["file": file]).utf8String
                if op.id == "POST /v1/restore" {
                    let own = try create()
                    try ready(own)
                    let saved = try daemon.curl("POST", "/v1/domains/\(own)/save", token: daemon.token, body: body,
                                                extra: ["--max-time", "180"])
                    guard saved.status == 200 else { throw ProbeError("save for the restore: \(saved.status) \(saved.body)") }
                }
            }

            // Without the token: 401, as documented, and nothing happens.
            let before = try daemon.domainNames()
            failures += check(op, try daemon.curl(op.method, concrete, token: nil, body: body), expecting: 401)
            #expect(try daemon.domainNames() == before, "\(op.id) without a token changed the domains")

            // An unknown domain: 404.
            if op.path.contains("{name}") {
                let other = op.path.replacingOccurrences(of: "{name}", with: "nosuch")
                failures += check(op, try daemon.curl(op.method, other, token: daemon.token, body: body), expecting: 404)
            }
            // A body that is not what the operation takes: 400.
            if op.example != nil {
                failures += check(op, try daemon.curl(op.method, concrete, token: daemon.token, body: #"{"nothing": true}"#), expecting: 400)
                failures += check(op, try daemon.curl(op.method, concrete, token: daemon.token, body: "not json"), expecting: 400)
            }
            // The operation itself (a create uses a configuration of the test's, not the example's paths).
            if op.method == "POST" && op.path == "/v1/domains" {
                let created = try create()
                failures += check(op, try #require(lastCreate), expecting: 201)
                #expect(try daemon.domainNames().contains(created))
                let duplicate = try daemon.curl("POST", "/v1/domains", token: daemon.token, body: try JSONSerialization.data(withJSONObject: [
                    "config": "name = \"\(created)\"\nmemory = 256\nkernel = \"\(kitDirectory)/vmlinuz\"\n"]).utf8String)
                failures += check(op, duplicate, expecting: 409)
                continue
            }
            let success = Int(op.responses.keys.filter { $0.hasPrefix("2") }.sorted().first ?? "200") ?? 200
            // A save waits for the new guest to boot far enough to suspend.
            let answer = try daemon.curl(op.method, concrete, token: daemon.token, body: body,
                                         extra: op.id.hasSuffix("/save") ? ["--max-time", "180"] : [])
            failures += check(op, answer, expecting: success)
            if op.ends { live = nil }
        }
        #expect(Set(operations.filter(\.ends).map(\.id)).isSuperset(of: ["DELETE /v1/domains/{name}", "POST /v1/domains/{name}/shutdown"]))
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        print("checked \(operations.count) operations against docs/openapi.json")
    }
}

extension Data {
    var utf8String: String { String(decoding: self, as: UTF8.self) }
}
