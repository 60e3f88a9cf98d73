/// `0x`-prefixed lowercase hexadecimal, for addresses in messages.
func hex(_ value: some BinaryInteger) -> String {
    "0x" + String(value, radix: 16)
}
