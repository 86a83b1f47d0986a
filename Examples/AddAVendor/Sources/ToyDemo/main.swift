import CopyEngine
import IOMMUCore
import ToyIOMMU

// A machine with one toy IOMMU and a copy engine behind it: the engine's driver copies a
// message through the DMA API, then the demo shows what the toy hardware did.
let machine = Machine(memory: 1 << 30)
let unit = try ToyIOMMU(name: "toy0", driver: ToyDriver(), memory: machine.memory)
machine.addIOMMU(unit)
let engine = CopyEngineDevice(rid: RID(bus: 0, device: 3, function: 0))
try machine.addDevice(engine.pci, behind: unit)
let driver = try CopyEngineDriver(engine: engine, machine: machine)

let message = Array("copied through the toy IOMMU".utf8)
let source = try machine.memory.allocContiguous(bytes: 4096)
let destination = try machine.memory.allocContiguous(bytes: 4096)
try machine.memory.write(source, message)
let job = try driver.copy(from: source, to: destination, length: message.count)
print("copy engine wrote: \"\(String(decoding: try machine.memory.bytes(at: destination, count: message.count), as: UTF8.self))\"")

// The driver unmapped both buffers when the job was done: the same job now faults.
if let fault = engine.execute(job) { print("the same job after unmap: \(fault)") }

let hw = unit.toy.counters
let invalidations = hw.invalidations.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
print("toy0: \(hw.translations) translations, \(hw.walks) table walks, \(hw.iotlbHits) IOTLB hits, "
      + "\(hw.faults) fault(s), invalidations: \(invalidations)")
driver.unbind()
