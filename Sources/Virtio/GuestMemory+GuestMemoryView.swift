import KVM

// A real VM's memory already has the bounds-checked, overflow-safe
// translation the virtio core needs (`pointer(_:length:)`).
//
// This is the only file of the target that needs KVM: the fuzz script
// compiles the others without it.
extension GuestMemory: GuestMemoryView {}
