import Foundation
import IOMMUCore
import XCTest

/// The counter behind `Counters.maps` and `Counters.unmaps`: threads add on stripes of
/// their own, and a read sums every stripe.
final class StripedCounterTests: XCTestCase {
    /// Eight threads each add 10,000 times: the sum is exact, none lost to a race
    /// (ThreadSanitizer checks the stripes' atomics too).
    func testConcurrentAddsSumExactly() {
        let counter = StripedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { counter.add(1) }
        }
        XCTAssertEqual(counter.value, 80_000)
    }

    /// Adds of other amounts, from one thread, read back as their sum.
    func testValueIsTheSumOfAdds() {
        let counter = StripedCounter()
        XCTAssertEqual(counter.value, 0)
        counter.add(5)
        counter.add(-2)
        counter.add(40)
        XCTAssertEqual(counter.value, 43)
    }
}
