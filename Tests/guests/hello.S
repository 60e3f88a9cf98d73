    .code64
_start:
    lea msg(%rip), %rdx
    xor %edi, %edi
    mov $(msgend - msg), %esi
    mov $18, %eax
    syscall
    mov $55, %eax
    syscall
    cmp $-38, %rax
    jne fail
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
msg: .ascii "hello from a PV guest\n"
msgend:
