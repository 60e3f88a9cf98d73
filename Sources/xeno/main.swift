import Glibc
import Toolstack
import VMM

/// `xeno`: Xenolith's command line. `run` boots a guest in the foreground;
/// `kit` builds the default guest kit.
let usage = """
usage: xeno run [--kernel PATH] [--initrd PATH] [--cmdline STR] [--memory SIZE]
                [--vcpus N] [--maxvcpus M] [--name NAME] [--pv | --hvm] [--no-reboot]
                [--disk PATH[,ro][,cache=none|writeback]]... [--net tap=NAME|bridge=BR[,mac=MAC]]...
                [--xenstore-socket PATH] [--control PATH] [--vsock PATH [--vsock-cid N]]
                [--restore FILE] [-- COMMAND...]
       xeno ctl PATH info | stats | vcpu-set N | mem-set SIZE | pause | unpause | save FILE
                     ask the guest running with --control PATH; prints the reply
       xeno exec [--timeout SECONDS] (NAME | --control PATH) [--] COMMAND...
                     run COMMAND in the PV guest run with --name NAME (or --control PATH);
                     prints its output, exits with its status (127: no such guest or agent)
       xeno kit      build the default guest kit (Debian's kernel + initramfs) and print where it is
\(Toolstack.usage)\(Toolstack.lifecycleUsage)
"""

func eprint(_ s: String) { _ = s.withCString { write(2, $0, strlen($0)) } }

// `--host`, `--token-file`, `--cacert` may come before a toolstack verb.
guard let args = Toolstack.takeConnectionOptions(Array(CommandLine.arguments.dropFirst())) else { exit(2) }
guard let verb = args.first else {
    eprint(usage)
    exit(2)
}
switch verb {
case "run":
    do {
        let options = try RunOptions.parse(Array(args.dropFirst()))
        exit(Runner.run(options))
    } catch {
        eprint("xeno: \(error)\n")
        exit(2)
    }
case "ctl":
    exit(ControlClient.run(Array(args.dropFirst())))
case "exec":
    exit(ExecClient.run(Array(args.dropFirst())))
case "kit":
    let script = Kit.buildScript
    guard access(script, R_OK) == 0 else {
        eprint("xeno: kit script not found at \(script)\n")
        exit(1)
    }
    let status = system("bash '\(script)' >&2")
    if status != 0 { exit(1) }
    print(Kit.directory)
case let v where Toolstack.verbs.contains(v):
    exit(Toolstack.run(v, Array(args.dropFirst())))
case let v where Toolstack.lifecycleVerbs.contains(v):
    exit(Toolstack.runLifecycle(v, Array(args.dropFirst())))
case "-h", "--help", "help":
    print(usage, terminator: "")
default:
    eprint("xeno: unknown verb '\(verb)'\n\(usage)")
    exit(2)
}
