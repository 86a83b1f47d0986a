/// A kernel `WARN_ON` that fired: the model records it instead of printing a stack.
/// The core keeps a machine's warnings (`Machine.warnings`); a page table below the core
/// keeps its own (``IOPageTable/warnings``) and hands each to its owner's handler.
public struct Warning: Hashable, Sendable, CustomStringConvertible {
    /// The kernel function that warns.
    public let function: String
    /// What went wrong.
    public let message: String

    /// A warning raised in `function`.
    public init(function: String, message: String) {
        self.function = function
        self.message = message
    }

    /// `function: message`.
    public var description: String { "WARNING in \(function): \(message)" }
}
