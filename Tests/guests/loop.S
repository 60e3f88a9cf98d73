    .code64
# 10000 hypercalls in a row: xen_version(XENVER_version) must give the same
# answer each time and preserve the registers the ABI says it preserves
# (all but rax, rcx and r11); then shutdown(poweroff), or crash if not.
_start:
    mov $10000, %r12d
    xor %edi, %edi
    xor %esi, %esi
    mov $17, %eax
    syscall
    mov %rax, %r13
    mov $0x1234567890, %rbx
again:
    xor %edi, %edi
    xor %esi, %esi
    mov $17, %eax
    syscall
    cmp %r13, %rax
    jne fail
    mov $0x1234567890, %rdx
    cmp %rdx, %rbx
    jne fail
    dec %r12d
    jnz again
    lea reason0(%rip), %rsi
    mov $2, %edi
    mov $29, %eax
    syscall
fail:
    lea reason3(%rip), %rsi
    mov $2, %edi
    mov $29, %eax
    syscall
    jmp fail
reason0: .long 0
reason3: .long 3
