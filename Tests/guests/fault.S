    .code64
_start:
    mov (0x10), %rax
1:  jmp 1b
