import Glibc

/// Where the service's socket and log live, and the checks that keep them private.
///
/// By default both live in a per-user directory of mode 0700: `$XDG_RUNTIME_DIR/iommukit`
/// when `XDG_RUNTIME_DIR` names a directory of this user with no group or other access
/// (as `pam_systemd` makes it), else `/tmp/iommukit-<uid>`. No other user can create,
/// replace or connect to anything in it. The shim (`preload.c`, `default_dir`) applies
/// the same rule; either side refuses a directory that is a symlink, belongs to someone
/// else or is open to others.
enum SocketDirectory {
    /// The per-user default directory (see the type's documentation).
    static var defaultPath: String {
        let uid = geteuid()
        if let xdg = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), xdg.hasPrefix("/"),
           isPrivateDirectory(xdg) {
            return xdg + "/iommukit"
        }
        return "/tmp/iommukit-\(uid)"
    }

    /// The default socket: `<default directory>/iommukitd.sock`.
    static var defaultSocket: String { defaultPath + "/iommukitd.sock" }

    /// Whether `path` is a real directory (not a symlink) of the effective user with no
    /// access for group or others.
    static func isPrivateDirectory(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        return st.st_mode & S_IFMT == S_IFDIR && st.st_uid == geteuid() && st.st_mode & 0o077 == 0
    }

    /// Creates `path` with mode 0700 when missing and checks that it is private.
    /// - Returns: nil when it is, else why not (for the log).
    static func makePrivate(_ path: String) -> String? {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { return "cannot create \(path): \(errnoName(errno))" }
        return isPrivateDirectory(path) ? nil
            : "\(path) is not a private directory of uid \(geteuid()) (a symlink, another owner, or group/other access)"
    }

    /// The directory part of a socket path.
    static func directory(of socket: String) -> String {
        guard let slash = socket.lastIndex(of: "/") else { return "." }
        return slash == socket.startIndex ? "/" : String(socket[..<slash])
    }
}
