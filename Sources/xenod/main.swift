import Foundation
import Host

/// xenod: the host daemon. It owns the host's domains (each a `xeno run`
/// VMM process of its own), keeps their configurations in its state
/// directory, re-adopts running VMMs when it restarts, and serves the
/// HTTP/JSON API on a Unix socket.
let usage = """
usage: xenod [--socket PATH] [--state-dir DIR] [--run-dir DIR] [--xeno PATH] [--cgroup NAME]
             [--listen ADDR:PORT --tls-cert PEM --tls-key PEM --token-file FILE]
  --socket     the API socket (default /run/xenolith/xenod.sock, mode 0600)
  --listen     also serve the API on TCP (e.g. 0.0.0.0:8443, [::]:8443), TLS only,
               every request with `Authorization: Bearer TOKEN`; needs all of:
  --tls-cert   the server's certificate chain (PEM)
  --tls-key    its private key (PEM)
  --token-file the bearer token (one line, 16 or more printable characters,
               the file readable by its owner only)
  --state-dir  domain records (default /var/lib/xenolith)
  --run-dir    VMM control sockets and console logs (default /run/xenolith)
  --xeno       the xeno binary that runs each VMM (default: beside xenod)
  --cgroup     the cgroup each domain's cgroup is made under (default xenolith)
  --routes     print the API's routes (METHOD PATH, as docs/openapi.json has them) and exit

"""

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("xenod: \(message)\n".utf8))
    exit(2)
}

var socketPath = "/run/xenolith/xenod.sock"
var listen: String?, tlsCert: String?, tlsKey: String?, tokenFile: String?
let selfPath = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
var paths = DomainManager.Paths(xenoBinary: URL(fileURLWithPath: selfPath).deletingLastPathComponent().appendingPathComponent("xeno").path)
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let flag = args.removeFirst()
    if flag == "-h" || flag == "--help" { print(usage, terminator: ""); exit(0) }
    if flag == "--routes" { print(HostRoutes.listing, terminator: ""); exit(0) }
    guard let value = args.first else { fail("\(flag) needs a value\n\(usage)") }
    args.removeFirst()
    switch flag {
    case "--socket": socketPath = value
    case "--state-dir": paths.stateDirectory = value
    case "--run-dir": paths.runDirectory = value
    case "--xeno": paths.xenoBinary = value
    case "--cgroup":
        guard !value.isEmpty, !value.hasPrefix("/"), !value.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            fail("--cgroup: '\(value)' is not a cgroup name (a relative path, no . or ..)")
        }
        paths.cgroupGroup = value
    case "--listen": listen = value
    case "--tls-cert": tlsCert = value
    case "--tls-key": tlsKey = value
    case "--token-file": tokenFile = value
    default: fail("unknown option '\(flag)'\n\(usage)")
    }
}
// TCP only with TLS and a token; TLS or a token without TCP is a mistake worth saying.
var tcp: TCPListenerOptions?
if let listen {
    guard let tlsCert, let tlsKey, let tokenFile else {
        fail("--listen needs --tls-cert, --tls-key and --token-file: the API is not served on TCP without TLS and a token")
    }
    tcp = TCPListenerOptions(address: listen, certificateChain: tlsCert, privateKey: tlsKey, tokenFile: tokenFile)
} else if tlsCert != nil || tlsKey != nil || tokenFile != nil {
    fail("--tls-cert, --tls-key and --token-file are for --listen (the Unix socket needs none)")
}
guard access(paths.xenoBinary, X_OK) == 0 else { fail("no xeno binary at \(paths.xenoBinary) (use --xeno)") }
// Whoever started us may have had signals blocked (a thread pool's
// worker does): SIGTERM must stop xenod (its VMMs carry on without it).
var unblocked = sigset_t()
sigemptyset(&unblocked)
sigprocmask(SIG_SETMASK, &unblocked, nil)
signal(SIGTERM, SIG_DFL)
signal(SIGPIPE, SIG_IGN)

/// Structured logs: one JSON object a line on stderr.
let log: @Sendable (String) -> Void = { message in
    let line = (try? JSONSerialization.data(withJSONObject: ["time": Date().timeIntervalSince1970, "msg": message], options: [.sortedKeys])) ?? Data()
    FileHandle.standardError.write(line + Data("\n".utf8))
}

do {
    try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: socketPath).deletingLastPathComponent().path,
                                            withIntermediateDirectories: true)
    let manager = try DomainManager(paths: paths, log: log)
    log("xenod: state in \(paths.stateDirectory)")
    try HostDaemon.serve(socketPath: socketPath, tcp: tcp, api: HostAPI(manager: manager), log: log)
} catch {
    fail("\(error)")
}
