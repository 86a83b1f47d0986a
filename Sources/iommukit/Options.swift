import Foundation

/// A command's arguments, split: positional words, flags, options with their values,
/// and what follows `--` (passed on to a target program untouched).
struct Options {
    var positional: [String] = []
    var flags: Set<String> = []
    var values: [String: String] = [:]
    var passthrough: [String] = []
}

/// Parses `args` for `command`, which knows `flags` (no value) and `valued` options
/// (`--name VALUE` or `--name=VALUE`). An unknown option or a missing value ends the
/// program with exit status 2 and a message naming the option (and the closest known
/// one).
func parseOptions(_ args: [String], command: String, flags: [String], valued: [String]) -> Options {
    var out = Options()
    var i = 0
    while i < args.count {
        let arg = args[i]
        i += 1
        if arg == "--" {
            out.passthrough = Array(args[i...])
            break
        }
        guard arg.hasPrefix("-"), arg != "-" else {
            out.positional.append(arg)
            continue
        }
        let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
        let name = parts[0]
        if flags.contains(name) {
            guard parts.count == 1 else { fail("iommukit \(command): option \(name) takes no value", code: 2) }
            out.flags.insert(name)
        } else if valued.contains(name) {
            if parts.count == 2 {
                out.values[name] = parts[1]
            } else if i < args.count {
                out.values[name] = args[i]
                i += 1
            } else {
                fail("iommukit \(command): option \(name) needs a value", code: 2)
            }
        } else {
            let known = flags + valued
            let hint = closest(to: name, in: known).map { " Did you mean '\($0)'?" }
                ?? (known.isEmpty ? " It takes no options." : " Its options: \(known.joined(separator: ", ")).")
            fail("iommukit \(command): unknown option '\(name)'.\(hint)", code: 2)
        }
    }
    return out
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a typo
/// (at most a third of the word's length, and at least 2, edits away).
func closest(to word: String, in candidates: [String]) -> String? {
    let limit = max(2, word.count / 3)
    let ranked = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }.min { $0.1 < $1.1 }
    guard let (best, distance) = ranked, distance <= limit else { return nil }
    return best
}

/// Levenshtein distance, with a transposition of neighbours counted as one edit
/// (`dmeo` is one edit from `demo`).
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
            }
        }
    }
    return d[a.count][b.count]
}

/// Prints `message` to stderr and exits with `code`.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(code)
}
