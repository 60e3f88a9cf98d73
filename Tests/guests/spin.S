    .code64
_start:
    lea msg(%rip), %rdx
    xor %edi, %edi
    mov $(msgend - msg), %esi
    mov $18, %eax
    syscall
    mov $200000000, %rcx
1:  dec %rcx
    jnz 1b
    lea msg2(%rip), %rdx
    xor %edi, %edi
    mov $(msg2end - msg2), %esi
    mov $18, %eax
    syscall
    lea reason0(%rip), %rsi
    mov $2, %edi
    mov $29, %eax
    syscall
2:  jmp 2b
reason0: .long 0
msg: .ascii "spinning\n"
msgend:
msg2: .ascii "done spinning\n"
msg2end:
