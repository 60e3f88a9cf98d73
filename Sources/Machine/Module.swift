/// The x86-64 machine an HVM guest boots on: what the guest sees before and
/// beside its kernel. Pure layout and device logic, no KVM: the VMM wires
/// these to a KVM VM (memory, vCPU registers, I/O exits, interrupt lines).
///
/// - Boot: the Linux boot protocol (zero page, e820, command line, initrd),
///   identity page tables and a GDT for a 64-bit entry, CPUID.
/// - ACPI: RSDP, XSDT, FADT, MADT, DSDT (the Debian cloud kernel finds its
///   CPUs only through the MADT).
/// - Legacy devices on I/O ports, all the same shape (`PortDevice`): 16550
///   UART, i8042 (reset), CMOS RTC, PCI host bridge (type-1 config access).
public enum MachineInfo {}
