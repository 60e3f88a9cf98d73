// GuestImage: reading guest kernels for Xenolith.
//
//   readWholeFile  → bytes of the kernel file (size-capped)
//   BzImage        → the x86 boot header and the payload's place in the file
//   LZ4            → the legacy-frame decompressor for Debian's LZ4 payloads
//   ELFImage       → ELF64 program headers and notes of the vmlinux
//   XenNotes       → the Xen PV boot metadata from the "Xen" notes
//   GuestKernel    → all of the above for one file: load(path:) and loadSegments
//
// No Foundation here: the per-guest VMM process links this module.
