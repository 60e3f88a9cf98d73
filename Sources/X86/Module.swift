// X86: x86-64 architecture facts and the instruction decoder/emulator the PV
// path needs (no Foundation, no heap allocation per decode).
//
//   RegisterFile      GPRs, rip, rflags, sub-register rules
//   decode            legacy-map length/operand decoder, 64-bit mode
//   effectiveAddress  ModRM/SIB/RIP-relative/moffs, 0x67, FS/GS
//   emulateMemoryWrite   the "writable pagetables" write emulator
//   decodePrivileged  system instructions at a #GP/#UD from CPL3
