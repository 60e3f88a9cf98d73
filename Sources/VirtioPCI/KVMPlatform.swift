import KVM

// A KVM VM delivers a transport's interrupts and rings its doorbells.

extension VirtualMachine: MSISignaller {
    public func signalMSI(address: UInt64, data: UInt32) {
        // A message the guest's APIC blocks is the guest's business.
        sendMSI(address: address, data: data)
    }
}

extension VirtualMachine: DoorbellBinder {
    public func bind(address: UInt64, length: UInt32, eventFD: Int32) -> Bool {
        (try? attachIOEventFD(address: address, length: length, eventFD: eventFD)) != nil
    }

    public func unbind(address: UInt64, length: UInt32, eventFD: Int32) {
        detachIOEventFD(address: address, length: length, eventFD: eventFD)
    }
}
