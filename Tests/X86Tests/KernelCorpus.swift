// Distinct encodings (by prefixes, opcode and ModRM) from the .text of
// Debian's linux-image-6.1.0-56-cloud-amd64, one per line, each exactly
// one instruction long as `objdump -d` decodes it: hex bytes, then the
// disassembly. Kept as text so the test target compiles quickly.
let kernelCorpus = """
00 e6                                         | add    %ah,%dh
01 03                                         | add    %eax,(%rbx)
01 4e 08                                      | add    %ecx,0x8(%rsi)
01 70 0c                                      | add    %esi,0xc(%rax)
01 84 24 cc 00 00 00                          | add    %eax,0xcc(%rsp)
01 d1                                         | add    %edx,%ecx
03 6a 38                                      | add    0x38(%rdx),%ebp
03 6b 20                                      | add    0x20(%rbx),%ebp
03 bb 80 00 00 00                             | add    0x80(%rbx),%edi
05 11 02 00 00                                | add    $0x211,%eax
05 99 00 00 00                                | add    $0x99,%eax
05 a0 00 00 00                                | add    $0xa0,%eax
08 ca                                         | or     %cl,%dl
09 15 8c 9c 9f 01                             | or     %edx,0x19f9c8c(%rip)
0b 04 24                                      | or     (%rsp),%eax
0b 15 bb 4a 25 02                             | or     0x2254abb(%rip),%edx
0b 47 38                                      | or     0x38(%rdi),%eax
0d 66 66 66 00                                | or     $0x666666,%eax
0f 01 5c 24 06                                | lidt   0x6(%rsp)
0f 22 d3                                      | mov    %rbx,%cr2
0f 22 e6                                      | mov    %rsi,%cr4
0f 43 c2                                      | cmovae %edx,%eax
0f 44 ce                                      | cmove  %esi,%ecx
0f 44 d8                                      | cmove  %eax,%ebx
0f 45 ef                                      | cmovne %edi,%ebp
0f 48 c7                                      | cmovs  %edi,%eax
0f 48 d3                                      | cmovs  %ebx,%edx
0f 48 f2                                      | cmovs  %edx,%esi
0f 49 ea                                      | cmovns %edx,%ebp
0f 49 f1                                      | cmovns %ecx,%esi
0f 4c d8                                      | cmovl  %eax,%ebx
0f 4c dd                                      | cmovl  %ebp,%ebx
0f 4d c3                                      | cmovge %ebx,%eax
0f 4d f5                                      | cmovge %ebp,%esi
0f 4e d1                                      | cmovle %ecx,%edx
0f 4e f2                                      | cmovle %edx,%esi
0f 80 b2 00 00 00                             | jo     0xffffffff8114bd2e
0f 80 b6 00 00 00                             | jo     0xffffffff811fb92e
0f 80 e9 02 00 00                             | jo     0xffffffff81760412
0f 82 11 fb ff ff                             | jb     0xffffffff810aa8f3
0f 82 15 ff ff ff                             | jb     0xffffffff810e23ad
0f 82 1b ff ff ff                             | jb     0xffffffff8100aab2
0f 82 2f 01 00 00                             | jb     0xffffffff810882a9
0f 82 45 02 00 00                             | jb     0xffffffff810331c7
0f 82 7a 06 00 00                             | jb     0xffffffff8101fd92
0f 82 86 00 00 00                             | jb     0xffffffff81040aca
0f 82 af 01 00 00                             | jb     0xffffffff8103f841
0f 82 f9 fc ff ff                             | jb     0xffffffff811d1e82
0f 83 07 ff ff ff                             | jae    0xffffffff8101c898
0f 83 17 ff ff ff                             | jae    0xffffffff810f0b1d
0f 83 22 05 00 00                             | jae    0xffffffff810db65a
0f 83 2e ff ff ff                             | jae    0xffffffff8102408f
0f 83 32 01 00 00                             | jae    0xffffffff810d7c16
0f 83 34 01 00 00                             | jae    0xffffffff81013bbe
0f 83 53 12 96 00                             | jae    0xffffffff819cab0b
0f 83 6c ff ff ff                             | jae    0xffffffff8101eeae
0f 83 8d 00 00 00                             | jae    0xffffffff8101fcf4
0f 83 96 01 00 00                             | jae    0xffffffff8101be09
0f 83 a3 00 00 00                             | jae    0xffffffff810ce9d5
0f 83 b4 fb ff ff                             | jae    0xffffffff810d9f0f
0f 83 fb fe ff ff                             | jae    0xffffffff8103c8f4
0f 84 30 01 00 00                             | je     0xffffffff8101c380
0f 84 3f ff ff ff                             | je     0xffffffff8101610e
0f 84 43 0c 00 00                             | je     0xffffffff81003f74
0f 84 44 01 00 00                             | je     0xffffffff81003fb5
0f 84 78 05 00 00                             | je     0xffffffff81006c41
0f 84 90 00 00 00                             | je     0xffffffff810031c0
0f 84 a9 11 00 00                             | je     0xffffffff81006bc4
0f 84 b4 17 00 00                             | je     0xffffffff81006e71
0f 84 b7 07 00 00                             | je     0xffffffff81004131
0f 84 b9 00 00 00                             | je     0xffffffff81001b47
0f 84 cb 06 00 00                             | je     0xffffffff810040f5
0f 85 16 10 00 00                             | jne    0xffffffff81006a20
0f 85 26 03 00 00                             | jne    0xffffffff8100077a
0f 85 2b 01 00 00                             | jne    0xffffffff8101517e
0f 85 36 01 00 00                             | jne    0xffffffff81002625
0f 85 48 08 00 00                             | jne    0xffffffff81006a20
0f 85 4a 04 00 00                             | jne    0xffffffff810030eb
0f 85 4c 01 00 00                             | jne    0xffffffff81003f51
0f 85 52 ff ff ff                             | jne    0xffffffff81012db5
0f 85 5c ff ff ff                             | jne    0xffffffff8101792b
0f 85 75 fe ff ff                             | jne    0xffffffff81005200
0f 85 7b 04 00 00                             | jne    0xffffffff81016504
0f 85 8d 00 00 00                             | jne    0xffffffff81025e3a
0f 85 a1 00 00 00                             | jne    0xffffffff81002b76
0f 85 ad 0b 00 00                             | jne    0xffffffff810044e7
0f 86 d1 fe ff ff                             | jbe    0xffffffff81055e30
0f 86 ed 1b 00 00                             | jbe    0xffffffff812145ee
0f 87 04 01 00 00                             | ja     0xffffffff81054692
0f 87 1a 03 00 00                             | ja     0xffffffff810a3cfb
0f 87 2c 01 00 00                             | ja     0xffffffff810f131a
0f 87 2f 01 00 00                             | ja     0xffffffff81055f56
0f 87 5c 90 79 00                             | ja     0xffffffff819d8ba1
0f 87 d2 00 00 00                             | ja     0xffffffff8100484d
0f 88 13 01 00 00                             | js     0xffffffff810c5db0
0f 88 17 01 00 00                             | js     0xffffffff81022dfc
0f 88 54 02 00 00                             | js     0xffffffff810e8073
0f 88 59 01 00 00                             | js     0xffffffff81077e5a
0f 88 90 00 00 00                             | js     0xffffffff810b03d0
0f 88 c5 00 00 00                             | js     0xffffffff8125ddd8
0f 88 dc bb 97 00                             | js     0xffffffff819c9927
0f 88 ed 00 00 00                             | js     0xffffffff81099c42
0f 89 14 02 00 00                             | jns    0xffffffff81346319
0f 89 44 0e 00 00                             | jns    0xffffffff8151a4f8
0f 89 55 fe ff ff                             | jns    0xffffffff8155c5e9
0f 89 63 08 00 00                             | jns    0xffffffff810ddb83
0f 89 75 01 00 00                             | jns    0xffffffff810e0279
0f 89 93 04 00 00                             | jns    0xffffffff810db650
0f 89 ba 01 00 00                             | jns    0xffffffff8171d7c1
0f 89 bd 01 00 00                             | jns    0xffffffff81204f71
0f 89 f4 00 00 00                             | jns    0xffffffff812d7b55
0f 8c 03 1a 3f 00                             | jl     0xffffffff819ec22d
0f 8c 14 01 00 00                             | jl     0xffffffff8124a9b1
0f 8c 30 02 00 00                             | jl     0xffffffff81061a73
0f 8c 32 0e 00 00                             | jl     0xffffffff8108e5cf
0f 8c 39 02 00 00                             | jl     0xffffffff815fde05
0f 8c 6d ff ff ff                             | jl     0xffffffff8107097f
0f 8c 87 00 00 00                             | jl     0xffffffff8178e370
0f 8c a2 00 00 00                             | jl     0xffffffff8113640d
0f 8c b9 fe ff ff                             | jl     0xffffffff8133ab32
0f 8c d3 00 00 00                             | jl     0xffffffff8125bc66
0f 8d 0a 01 00 00                             | jge    0xffffffff81341953
0f 8d 37 02 00 00                             | jge    0xffffffff81275800
0f 8d 91 00 00 00                             | jge    0xffffffff818c044b
0f 8d a5 00 00 00                             | jge    0xffffffff81806fb6
0f 8d ba 02 00 00                             | jge    0xffffffff812cac1c
0f 8d c5 07 00 00                             | jge    0xffffffff8191ff2a
0f 8d e5 0f 00 00                             | jge    0xffffffff8172d519
0f 8d fa 00 00 00                             | jge    0xffffffff814490ea
0f 8e 0f 01 00 00                             | jle    0xffffffff81411f70
0f 8e 1b 02 00 00                             | jle    0xffffffff810140d0
0f 8e 2a 01 00 00                             | jle    0xffffffff81437c2d
0f 8e 5f 08 00 00                             | jle    0xffffffff8124fbe2
0f 8e 6b 01 00 00                             | jle    0xffffffff8104a27b
0f 8e 84 01 00 00                             | jle    0xffffffff810f0426
0f 8e 96 04 00 00                             | jle    0xffffffff8110c724
0f 8e a9 00 00 00                             | jle    0xffffffff812212c3
0f 8e b6 fb ff ff                             | jle    0xffffffff8108f36d
0f 8e d6 00 00 00                             | jle    0xffffffff810d32cd
0f 8f 13 a9 96 00                             | jg     0xffffffff819c9df5
0f 8f 16 01 00 00                             | jg     0xffffffff811a93d3
0f 8f 2c fe ff ff                             | jg     0xffffffff81434cf7
0f 8f 5b fa ff ff                             | jg     0xffffffff8121488f
0f 8f 6d ff ff ff                             | jg     0xffffffff8100a2c6
0f 8f b7 00 00 00                             | jg     0xffffffff81251f9d
0f 8f bf 01 00 00                             | jg     0xffffffff81085ab7
0f 8f cc 00 00 00                             | jg     0xffffffff811bcbfe
0f 8f df 01 00 00                             | jg     0xffffffff8112d141
0f 95 03                                      | setne  (%rbx)
0f 95 80 51 02 00 00                          | setne  0x251(%rax)
0f 97 45 af                                   | seta   -0x51(%rbp)
0f a3 d9                                      | bt     %ebx,%ecx
0f af 0d 42 49 83 01                          | imul   0x1834942(%rip),%ecx
0f af 2d d0 9a d6 01                          | imul   0x1d69ad0(%rip),%ebp
0f b3 f0                                      | btr    %esi,%eax
0f b6 11                                      | movzbl (%rcx),%edx
0f b6 30                                      | movzbl (%rax),%esi
0f b6 49 22                                   | movzbl 0x22(%rcx),%ecx
0f b6 95 30 01 00 00                          | movzbl 0x130(%rbp),%edx
0f b6 cd                                      | movzbl %ch,%ecx
0f b7 1e                                      | movzwl (%rsi),%ebx
0f b7 3f                                      | movzwl (%rdi),%edi
0f b7 4f 2a                                   | movzwl 0x2a(%rdi),%ecx
0f b7 81 fe d5 39 82                          | movzwl -0x7dc62a02(%rcx),%eax
0f b7 89 10 01 00 00                          | movzwl 0x110(%rcx),%ecx
0f b7 c0                                      | movzwl %ax,%eax
0f b7 c3                                      | movzwl %bx,%eax
0f b7 e8                                      | movzwl %ax,%ebp
0f bd 8f e0 01 00 00                          | bsr    0x1e0(%rdi),%ecx
0f be 02                                      | movsbl (%rdx),%eax
0f be 13                                      | movsbl (%rbx),%edx
0f be 41 01                                   | movsbl 0x1(%rcx),%eax
0f be 72 3a                                   | movsbl 0x3a(%rdx),%esi
0f be 88 88 b3 02 82                          | movsbl -0x7dfd4c78(%rax),%ecx
0f be c2                                      | movsbl %dl,%eax
0f be f2                                      | movsbl %dl,%esi
0f be fa                                      | movsbl %dl,%edi
0f bf 04 78                                   | movswl (%rax,%rdi,2),%eax
0f bf 4d 02                                   | movswl 0x2(%rbp),%ecx
0f bf b4 c3 1a 01 00 00                       | movswl 0x11a(%rbx,%rax,8),%esi
0f c8                                         | bswap  %eax
13 4a 08                                      | adc    0x8(%rdx),%ecx
13 4c 16 0c                                   | adc    0xc(%rsi,%rdx,1),%ecx
1d b7 f0 ff ff                                | sbb    $0xfffff0b7,%eax
20 56 16                                      | and    %dl,0x16(%rsi)
21 c2                                         | and    %eax,%edx
21 d2                                         | and    %edx,%edx
22 07                                         | and    (%rdi),%al
23 03                                         | and    (%rbx),%eax
23 0e                                         | and    (%rsi),%ecx
23 35 05 54 92 01                             | and    0x1925405(%rip),%esi
23 43 58                                      | and    0x58(%rbx),%eax
23 48 3c                                      | and    0x3c(%rax),%ecx
24 5f                                         | and    $0x5f,%al
25 16 07 00 00                                | and    $0x716,%eax
29 78 14                                      | sub    %edi,0x14(%rax)
29 83 94 08 00 00                             | sub    %eax,0x894(%rbx)
29 c6                                         | sub    %eax,%esi
29 f2                                         | sub    %esi,%edx
2b 07                                         | sub    (%rdi),%eax
2b 48 58                                      | sub    0x58(%rax),%ecx
2b 4e 0c                                      | sub    0xc(%rsi),%ecx
2b 5f 20                                      | sub    0x20(%rdi),%ebx
2d 99 3a 00 00                                | sub    $0x3a99,%eax
2e e8 25 52 69 00                             | cs call 0xffffffff81e01880
2e e8 31 60 a8 00                             | cs call 0xffffffff81e018c0
2e e8 61 3a c4 00                             | cs call 0xffffffff81e018e0
2e e8 7b d4 a7 00                             | cs call 0xffffffff81e01880
2e e8 7e 92 cd 00                             | cs call 0xffffffff81e018e0
2e e8 cb a8 ab 00                             | cs call 0xffffffff81e01840
2e e8 d5 6b 71 00                             | cs call 0xffffffff81e018c0
2e e8 d8 f8 97 00                             | cs call 0xffffffff81e01880
2e e8 f4 5f a8 00                             | cs call 0xffffffff81e018c0
2e e8 fd c2 95 00                             | cs call 0xffffffff81e01840
30 e4                                         | xor    %ah,%ah
31 ef                                         | xor    %ebp,%edi
33 50 f8                                      | xor    -0x8(%rax),%edx
38 48 05                                      | cmp    %cl,0x5(%rax)
38 8e d8 00 00 00                             | cmp    %cl,0xd8(%rsi)
39 0c c5 c4 6a 00 82                          | cmp    %ecx,-0x7dff953c(,%rax,8)
39 0f                                         | cmp    %ecx,(%rdi)
39 1e                                         | cmp    %ebx,(%rsi)
39 4a 34                                      | cmp    %ecx,0x34(%rdx)
3a 15 0c f0 49 01                             | cmp    0x149f00c(%rip),%dl
3a 43 ea                                      | cmp    -0x16(%rbx),%al
3a 83 8e 00 00 00                             | cmp    0x8e(%rbx),%al
3b 04 9a                                      | cmp    (%rdx,%rbx,4),%eax
3b 30                                         | cmp    (%rax),%esi
3b 34 87                                      | cmp    (%rdi,%rax,4),%esi
3b 4e 08                                      | cmp    0x8(%rsi),%ecx
3b 6f 04                                      | cmp    0x4(%rdi),%ebp
3b 72 10                                      | cmp    0x10(%rdx),%esi
3b 8f 78 02 00 00                             | cmp    0x278(%rdi),%ecx
3b af d4 08 00 00                             | cmp    0x8d4(%rdi),%ebp
3c 3d                                         | cmp    $0x3d,%al
3c 9d                                         | cmp    $0x9d,%al
3d 00 02 00 00                                | cmp    $0x200,%eax
3d 0e 01 00 00                                | cmp    $0x10e,%eax
3d 9f 00 00 00                                | cmp    $0x9f,%eax
3d a1 00 00 00                                | cmp    $0xa1,%eax
3d cb 00 00 00                                | cmp    $0xcb,%eax
3d f4 00 00 00                                | cmp    $0xf4,%eax
40 02 b0 00 03 00 00                          | add    0x300(%rax),%sil
40 08 f7                                      | or     %sil,%dil
40 0f 95 c5                                   | setne  %bpl
40 0f b6 c5                                   | movzbl %bpl,%eax
40 0f b6 de                                   | movzbl %sil,%ebx
40 0f b6 f6                                   | movzbl %sil,%esi
40 0f b6 ff                                   | movzbl %dil,%edi
40 0f be ed                                   | movsbl %bpl,%ebp
40 0f be ff                                   | movsbl %dil,%edi
40 38 bb 40 01 00 00                          | cmp    %dil,0x140(%rbx)
40 80 ce e3                                   | or     $0xe3,%sil
40 80 f7 80                                   | xor    $0x80,%dil
40 88 2d f6 dd 9d 01                          | mov    %bpl,0x19dddf6(%rip)
40 88 31                                      | mov    %sil,(%rcx)
40 88 f9                                      | mov    %dil,%cl
41 01 50 3c                                   | add    %edx,0x3c(%r8)
41 01 85 d8 00 00 00                          | add    %eax,0xd8(%r13)
41 01 db                                      | add    %ebx,%r11d
41 01 fb                                      | add    %edi,%r11d
41 03 10                                      | add    (%r8),%edx
41 03 8f b0 00 00 00                          | add    0xb0(%r15),%ecx
41 08 44 24 34                                | or     %al,0x34(%r12)
41 08 c6                                      | or     %al,%r14b
41 08 ea                                      | or     %bpl,%r10b
41 09 45 68                                   | or     %eax,0x68(%r13)
41 0f 20 d8                                   | mov    %cr3,%r8
41 0f 43 c5                                   | cmovae %r13d,%eax
41 0f 43 f8                                   | cmovae %r8d,%edi
41 0f 45 cb                                   | cmovne %r11d,%ecx
41 0f 46 c2                                   | cmovbe %r10d,%eax
41 0f 46 c5                                   | cmovbe %r13d,%eax
41 0f 4c cd                                   | cmovl  %r13d,%ecx
41 0f 4e fb                                   | cmovle %r11d,%edi
41 0f 95 47 2c                                | setne  0x2c(%r15)
41 0f a3 c5                                   | bt     %eax,%r13d
41 0f a3 cd                                   | bt     %ecx,%r13d
41 0f af da                                   | imul   %r10d,%ebx
41 0f b6 3f                                   | movzbl (%r15),%edi
41 0f b6 46 19                                | movzbl 0x19(%r14),%eax
41 0f b6 4b 02                                | movzbl 0x2(%r11),%ecx
41 0f b6 5c 24 0d                             | movzbl 0xd(%r12),%ebx
41 0f b6 84 24 00 01 00 00                    | movzbl 0x100(%r12),%eax
41 0f b6 92 dd 02 00 00                       | movzbl 0x2dd(%r10),%edx
41 0f b6 bf 04 02 00 00                       | movzbl 0x204(%r15),%edi
41 0f b6 c1                                   | movzbl %r9b,%eax
41 0f b6 cc                                   | movzbl %r12b,%ecx
41 0f b7 9e 7e 02 00 00                       | movzwl 0x27e(%r14),%ebx
41 0f b7 f9                                   | movzwl %r9w,%edi
41 0f ba e4 08                                | bt     $0x8,%r12d
41 0f be 34 24                                | movsbl (%r12),%esi
41 0f bf 7d 14                                | movswl 0x14(%r13),%edi
41 0f bf f2                                   | movswl %r10w,%esi
41 21 c3                                      | and    %eax,%r11d
41 21 cd                                      | and    %ecx,%r13d
41 21 d3                                      | and    %edx,%r11d
41 21 d6                                      | and    %edx,%r14d
41 22 87 82 00 00 00                          | and    0x82(%r15),%al
41 23 08                                      | and    (%r8),%ecx
41 23 46 08                                   | and    0x8(%r14),%eax
41 23 79 10                                   | and    0x10(%r9),%edi
41 29 ce                                      | sub    %ecx,%r14d
41 29 db                                      | sub    %ebx,%r11d
41 29 df                                      | sub    %ebx,%r15d
41 29 fc                                      | sub    %edi,%r12d
41 31 ec                                      | xor    %ebp,%r12d
41 31 f0                                      | xor    %esi,%r8d
41 33 54 05 00                                | xor    0x0(%r13,%rax,1),%edx
41 33 55 34                                   | xor    0x34(%r13),%edx
41 33 58 08                                   | xor    0x8(%r8),%ebx
41 33 77 34                                   | xor    0x34(%r15),%esi
41 33 85 48 01 00 00                          | xor    0x148(%r13),%eax
41 38 d6                                      | cmp    %dl,%r14b
41 38 dc                                      | cmp    %bl,%r12b
41 39 2e                                      | cmp    %ebp,(%r14)
41 39 5f 2c                                   | cmp    %ebx,0x2c(%r15)
41 39 7e 28                                   | cmp    %edi,0x28(%r14)
41 39 b6 04 07 00 00                          | cmp    %esi,0x704(%r14)
41 39 c9                                      | cmp    %ecx,%r9d
41 39 d7                                      | cmp    %edx,%r15d
41 39 ea                                      | cmp    %ebp,%r10d
41 39 f0                                      | cmp    %esi,%r8d
41 39 fd                                      | cmp    %edi,%r13d
41 3b 74 24 08                                | cmp    0x8(%r12),%esi
41 3b 77 7c                                   | cmp    0x7c(%r15),%esi
41 3b 8c 24 d8 0e 00 00                       | cmp    0xed8(%r12),%ecx
41 5c                                         | pop    %r12
41 80 3b 2e                                   | cmpb   $0x2e,(%r11)
41 80 bd 04 01 00 00 00                       | cmpb   $0x0,0x104(%r13)
41 81 65 78 f0 00 e0 ff                       | andl   $0xffe000f0,0x78(%r13)
41 81 e7 00 00 04 00                          | and    $0x40000,%r15d
41 81 fe 80 00 00 00                          | cmp    $0x80,%r14d
41 83 4a 04 04                                | orl    $0x4,0x4(%r10)
41 83 68 04 01                                | subl   $0x1,0x4(%r8)
41 83 7f 14 ff                                | cmpl   $0xffffffff,0x14(%r15)
41 83 c3 01                                   | add    $0x1,%r11d
41 83 c6 01                                   | add    $0x1,%r14d
41 83 d8 00                                   | sbb    $0x0,%r8d
41 84 c9                                      | test   %cl,%r9b
41 84 f8                                      | test   %dil,%r8b
41 87 4d 18                                   | xchg   %ecx,0x18(%r13)
41 88 08                                      | mov    %cl,(%r8)
41 88 49 01                                   | mov    %cl,0x1(%r9)
41 88 4b ff                                   | mov    %cl,-0x1(%r11)
41 88 54 24 18                                | mov    %dl,0x18(%r12)
41 88 58 70                                   | mov    %bl,0x70(%r8)
41 89 30                                      | mov    %esi,(%r8)
41 89 38                                      | mov    %edi,(%r8)
41 89 78 0c                                   | mov    %edi,0xc(%r8)
41 89 7d 60                                   | mov    %edi,0x60(%r13)
41 89 c7                                      | mov    %eax,%r15d
41 8b 00                                      | mov    (%r8),%eax
41 8b 0f                                      | mov    (%r15),%ecx
41 8b 1e                                      | mov    (%r14),%ebx
41 8b 30                                      | mov    (%r8),%esi
41 8b 34 24                                   | mov    (%r12),%esi
41 8b 3e                                      | mov    (%r14),%edi
41 8b 5b 04                                   | mov    0x4(%r11),%ebx
41 8c ef                                      | mov    %gs,%r15d
41 8d 42 01                                   | lea    0x1(%r10),%eax
41 8d 77 ff                                   | lea    -0x1(%r15),%esi
41 8e db                                      | mov    %r11d,%ds
41 b8 79 00 00 00                             | mov    $0x79,%r8d
41 b8 b5 ff ff ff                             | mov    $0xffffffb5,%r8d
41 b8 d9 ff ff ff                             | mov    $0xffffffd9,%r8d
41 b9 0f 00 00 00                             | mov    $0xf,%r9d
41 b9 43 00 00 00                             | mov    $0x43,%r9d
41 ba 0d 00 00 00                             | mov    $0xd,%r10d
41 ba c8 00 00 00                             | mov    $0xc8,%r10d
41 ba e8 03 00 00                             | mov    $0x3e8,%r10d
41 bb 01 00 00 00                             | mov    $0x1,%r11d
41 bb 40 00 00 00                             | mov    $0x40,%r11d
41 bb 73 00 00 00                             | mov    $0x73,%r11d
41 bb 8b ff ff ff                             | mov    $0xffffff8b,%r11d
41 bc 0d 00 00 00                             | mov    $0xd,%r12d
41 bc 64 00 00 00                             | mov    $0x64,%r12d
41 bc d6 ff ff ff                             | mov    $0xffffffd6,%r12d
41 bc e8 03 00 00                             | mov    $0x3e8,%r12d
41 bd 03 00 00 40                             | mov    $0x40000003,%r13d
41 bd 08 00 00 00                             | mov    $0x8,%r13d
41 bd 50 00 00 00                             | mov    $0x50,%r13d
41 bd a6 ff ff ff                             | mov    $0xffffffa6,%r13d
41 bd cb ff ff ff                             | mov    $0xffffffcb,%r13d
41 bd dd ff ff ff                             | mov    $0xffffffdd,%r13d
41 bd e5 ff ff ff                             | mov    $0xffffffe5,%r13d
41 bd e8 03 00 00                             | mov    $0x3e8,%r13d
41 be 33 fb ff ff                             | mov    $0xfffffb33,%r14d
41 be 54 02 00 00                             | mov    $0x254,%r14d
41 be e4 ff ff ff                             | mov    $0xffffffe4,%r14d
41 be f7 ff ff ff                             | mov    $0xfffffff7,%r14d
41 be fd ff ff ff                             | mov    $0xfffffffd,%r14d
41 bf 11 00 00 00                             | mov    $0x11,%r15d
41 bf 48 00 00 00                             | mov    $0x48,%r15d
41 bf f5 ff ff ff                             | mov    $0xfffffff5,%r15d
41 c1 c0 10                                   | rol    $0x10,%r8d
41 c7 43 04 ff ff ff ff                       | movl   $0xffffffff,0x4(%r11)
41 d3 e8                                      | shr    %cl,%r8d
41 f7 47 2c 10 00 20 00                       | testl  $0x200010,0x2c(%r15)
41 f7 83 c8 01 00 00 fd ff ff ff              | testl  $0xfffffffd,0x1c8(%r11)
41 f7 c3 00 00 00 02                          | test   $0x2000000,%r11d
41 f7 f6                                      | div    %r14d
41 ff 76 68                                   | push   0x68(%r14)
41 ff e1                                      | jmp    *%r9
42 0f 95 44 28 28                             | setne  0x28(%rax,%r13,1)
42 0f b6 6c 20 1a                             | movzbl 0x1a(%rax,%r12,1),%ebp
42 0f b7 4c 06 fe                             | movzwl -0x2(%rsi,%r8,1),%ecx
42 88 04 2a                                   | mov    %al,(%rdx,%r13,1)
42 88 6c 33 29                                | mov    %bpl,0x29(%rbx,%r14,1)
42 89 54 15 fc                                | mov    %edx,-0x4(%rbp,%r10,1)
42 89 5c ac 48                                | mov    %ebx,0x48(%rsp,%r13,4)
42 89 b4 81 a8 0b 00 00                       | mov    %esi,0xba8(%rcx,%r8,4)
42 8b 0c 8d c0 99 00 82                       | mov    -0x7dff6640(,%r9,4),%ecx
42 8b 8c 21 00 01 00 00                       | mov    0x100(%rcx,%r12,1),%ecx
43 8b 84 a6 0c 01 00 00                       | mov    0x10c(%r14,%r12,4),%eax
43 8d 2c 40                                   | lea    (%r8,%r8,2),%ebp
44 01 c2                                      | add    %r8d,%edx
44 03 51 28                                   | add    0x28(%rcx),%r10d
44 03 67 04                                   | add    0x4(%rdi),%r12d
44 03 74 24 68                                | add    0x68(%rsp),%r14d
44 03 bc 24 90 00 00 00                       | add    0x90(%rsp),%r15d
44 08 70 30                                   | or     %r14b,0x30(%rax)
44 08 db                                      | or     %r11b,%bl
44 09 c3                                      | or     %r8d,%ebx
44 09 fd                                      | or     %r15d,%ebp
44 0b 6f 38                                   | or     0x38(%rdi),%r13d
44 0b 78 18                                   | or     0x18(%rax),%r15d
44 0f 42 ed                                   | cmovb  %ebp,%r13d
44 0f 42 f2                                   | cmovb  %edx,%r14d
44 0f 42 f6                                   | cmovb  %esi,%r14d
44 0f 43 c0                                   | cmovae %eax,%r8d
44 0f 43 f7                                   | cmovae %edi,%r14d
44 0f 44 d3                                   | cmove  %ebx,%r10d
44 0f 44 f6                                   | cmove  %esi,%r14d
44 0f 44 ff                                   | cmove  %edi,%r15d
44 0f 45 d2                                   | cmovne %edx,%r10d
44 0f 45 e9                                   | cmovne %ecx,%r13d
44 0f 47 f2                                   | cmova  %edx,%r14d
44 0f 47 f6                                   | cmova  %esi,%r14d
44 0f 48 f0                                   | cmovs  %eax,%r14d
44 0f 4e fb                                   | cmovle %ebx,%r15d
44 0f a3 f8                                   | bt     %r15d,%eax
44 0f af d0                                   | imul   %eax,%r10d
44 0f af d6                                   | imul   %esi,%r10d
44 0f af e0                                   | imul   %eax,%r12d
44 0f b6 1c 24                                | movzbl (%rsp),%r11d
44 0f b6 49 01                                | movzbl 0x1(%rcx),%r9d
44 0f b6 87 8e 00 00 00                       | movzbl 0x8e(%rdi),%r8d
44 0f b6 c1                                   | movzbl %cl,%r8d
44 0f b7 08                                   | movzwl (%rax),%r9d
44 0f b7 12                                   | movzwl (%rdx),%r10d
44 0f b7 1f                                   | movzwl (%rdi),%r11d
44 0f b7 31                                   | movzwl (%rcx),%r14d
44 0f b7 42 04                                | movzwl 0x4(%rdx),%r8d
44 0f b7 44 24 28                             | movzwl 0x28(%rsp),%r8d
44 0f b7 52 38                                | movzwl 0x38(%rdx),%r10d
44 0f b7 7a 06                                | movzwl 0x6(%rdx),%r15d
44 0f b7 c6                                   | movzwl %si,%r8d
44 0f b7 d6                                   | movzwl %si,%r10d
44 0f be 64 03 ff                             | movsbl -0x1(%rbx,%rax,1),%r12d
44 0f be c1                                   | movsbl %cl,%r8d
44 21 e5                                      | and    %r12d,%ebp
44 21 ed                                      | and    %r13d,%ebp
44 21 f8                                      | and    %r15d,%eax
44 21 fa                                      | and    %r15d,%edx
44 29 25 8b 8f ef 01                          | sub    %r12d,0x1ef8f8b(%rip)
44 29 73 18                                   | sub    %r14d,0x18(%rbx)
44 29 7c 24 04                                | sub    %r15d,0x4(%rsp)
44 29 8d 80 00 00 00                          | sub    %r9d,0x80(%rbp)
44 2b 60 10                                   | sub    0x10(%rax),%r12d
44 2b 64 24 28                                | sub    0x28(%rsp),%r12d
44 2b 93 64 05 00 00                          | sub    0x564(%rbx),%r10d
44 31 ed                                      | xor    %r13d,%ebp
44 33 90 80 00 00 00                          | xor    0x80(%rax),%r10d
44 38 4b 64                                   | cmp    %r9b,0x64(%rbx)
44 38 73 14                                   | cmp    %r14b,0x14(%rbx)
44 38 e8                                      | cmp    %r13b,%al
44 38 f1                                      | cmp    %r14b,%cl
44 39 05 13 28 1f 02                          | cmp    %r8d,0x21f2813(%rip)
44 39 3c 24                                   | cmp    %r15d,(%rsp)
44 39 40 08                                   | cmp    %r8d,0x8(%rax)
44 39 47 6c                                   | cmp    %r8d,0x6c(%rdi)
44 39 4a 08                                   | cmp    %r9d,0x8(%rdx)
44 39 7c 24 28                                | cmp    %r15d,0x28(%rsp)
44 39 a3 14 02 00 00                          | cmp    %r12d,0x214(%rbx)
44 39 cb                                      | cmp    %r9d,%ebx
44 39 f8                                      | cmp    %r15d,%eax
44 3a 48 19                                   | cmp    0x19(%rax),%r9b
44 3b 35 b8 ab b3 01                          | cmp    0x1b3abb8(%rip),%r14d
44 3b 42 08                                   | cmp    0x8(%rdx),%r8d
44 3b 6e 4c                                   | cmp    0x4c(%rsi),%r13d
44 88 36                                      | mov    %r14b,(%rsi)
44 88 7e fe                                   | mov    %r15b,-0x2(%rsi)
44 88 f8                                      | mov    %r15b,%al
44 89 2a                                      | mov    %r13d,(%rdx)
44 89 2d 33 3b bd 01                          | mov    %r13d,0x1bd3b33(%rip)
44 89 45 bc                                   | mov    %r8d,-0x44(%rbp)
44 89 57 74                                   | mov    %r10d,0x74(%rdi)
44 89 7f 08                                   | mov    %r15d,0x8(%rdi)
44 89 8b 60 0d 00 00                          | mov    %r9d,0xd60(%rbx)
44 89 a3 80 15 00 00                          | mov    %r12d,0x1580(%rbx)
44 89 b2 14 02 00 00                          | mov    %r14d,0x214(%rdx)
44 89 d1                                      | mov    %r10d,%ecx
44 89 ea                                      | mov    %r13d,%edx
44 8a 44 24 06                                | mov    0x6(%rsp),%r8b
44 8b 53 0c                                   | mov    0xc(%rbx),%r10d
44 8b 84 24 b8 00 00 00                       | mov    0xb8(%rsp),%r8d
44 8b 8a 94 00 00 00                          | mov    0x94(%rdx),%r9d
44 8b 94 24 88 00 00 00                       | mov    0x88(%rsp),%r10d
44 8b aa 84 00 00 00                          | mov    0x84(%rdx),%r13d
44 8d 0c 11                                   | lea    (%rcx,%rdx,1),%r9d
44 8d 86 ef be ad de                          | lea    -0x21524111(%rsi),%r8d
44 8d a2 00 80 ff ff                          | lea    -0x8000(%rdx),%r12d
44 8d ae 72 f3 6e 3c                          | lea    0x3c6ef372(%rsi),%r13d
45 01 ae d8 00 00 00                          | add    %r13d,0xd8(%r14)
45 01 c4                                      | add    %r8d,%r12d
45 01 c8                                      | add    %r9d,%r8d
45 01 cb                                      | add    %r9d,%r11d
45 01 d3                                      | add    %r10d,%r11d
45 01 d9                                      | add    %r11d,%r9d
45 01 e3                                      | add    %r12d,%r11d
45 03 19                                      | add    (%r9),%r11d
45 03 8b 9c 00 00 00                          | add    0x9c(%r11),%r9d
45 09 c8                                      | or     %r9d,%r8d
45 09 ec                                      | or     %r13d,%r12d
45 0f 42 fb                                   | cmovb  %r11d,%r15d
45 0f b6 58 f8                                | movzbl -0x8(%r8),%r11d
45 0f b6 5a f8                                | movzbl -0x8(%r10),%r11d
45 0f b6 75 00                                | movzbl 0x0(%r13),%r14d
45 0f b6 7f 01                                | movzbl 0x1(%r15),%r15d
45 0f b6 87 0d 02 00 00                       | movzbl 0x20d(%r15),%r8d
45 0f b6 8c 24 21 17 00 00                    | movzbl 0x1721(%r12),%r9d
45 0f b6 b8 f9 00 00 00                       | movzbl 0xf9(%r8),%r15d
45 0f b6 c3                                   | movzbl %r11b,%r8d
45 0f b6 d1                                   | movzbl %r9b,%r10d
45 0f b6 e7                                   | movzbl %r15b,%r12d
45 0f b7 07                                   | movzwl (%r15),%r8d
45 0f b7 1e                                   | movzwl (%r14),%r11d
45 0f b7 4e 32                                | movzwl 0x32(%r14),%r9d
45 0f b7 79 04                                | movzwl 0x4(%r9),%r15d
45 0f b7 95 88 0a 00 00                       | movzwl 0xa88(%r13),%r10d
45 0f b7 9c 42 88 00 00 00                    | movzwl 0x88(%r10,%rax,2),%r11d
45 0f b7 9f ae 00 00 00                       | movzwl 0xae(%r15),%r11d
45 0f b7 b7 b8 00 00 00                       | movzwl 0xb8(%r15),%r14d
45 0f b7 c5                                   | movzwl %r13w,%r8d
45 0f b7 cc                                   | movzwl %r12w,%r9d
45 0f b7 e9                                   | movzwl %r9w,%r13d
45 0f b7 f1                                   | movzwl %r9w,%r14d
45 0f b7 f4                                   | movzwl %r12w,%r14d
45 0f b7 fc                                   | movzwl %r12w,%r15d
45 0f be 9b c8 d3 2e 82                       | movsbl -0x7dd12c38(%r11),%r11d
45 19 e4                                      | sbb    %r12d,%r12d
45 19 f6                                      | sbb    %r14d,%r14d
45 21 d3                                      | and    %r10d,%r11d
45 29 65 14                                   | sub    %r12d,0x14(%r13)
45 29 94 24 1c 0a 00 00                       | sub    %r10d,0xa1c(%r12)
45 29 d0                                      | sub    %r10d,%r8d
45 29 fa                                      | sub    %r15d,%r10d
45 30 f6                                      | xor    %r14b,%r14b
45 31 cb                                      | xor    %r9d,%r11d
45 31 d3                                      | xor    %r10d,%r11d
45 31 da                                      | xor    %r11d,%r10d
45 38 cb                                      | cmp    %r9b,%r11b
45 39 4c 24 04                                | cmp    %r9d,0x4(%r12)
45 39 ac 24 80 00 00 00                       | cmp    %r13d,0x80(%r12)
45 39 c7                                      | cmp    %r8d,%r15d
45 39 d1                                      | cmp    %r10d,%r9d
45 39 ef                                      | cmp    %r13d,%r15d
45 3a 5c 24 28                                | cmp    0x28(%r12),%r11b
45 3b bd 80 15 00 00                          | cmp    0x1580(%r13),%r15d
45 3b be 00 01 00 00                          | cmp    0x100(%r14),%r15d
45 85 cc                                      | test   %r9d,%r12d
45 89 62 14                                   | mov    %r12d,0x14(%r10)
45 89 66 3c                                   | mov    %r12d,0x3c(%r14)
45 89 84 24 24 17 00 00                       | mov    %r8d,0x1724(%r12)
45 89 bc 24 20 9f 02 00                       | mov    %r15d,0x29f20(%r12)
45 89 bd 80 15 00 00                          | mov    %r15d,0x1580(%r13)
45 8b 1b                                      | mov    (%r11),%r11d
45 8b 38                                      | mov    (%r8),%r15d
45 8b 4a 50                                   | mov    0x50(%r10),%r9d
45 8b 53 0c                                   | mov    0xc(%r11),%r10d
45 8b 7f 0c                                   | mov    0xc(%r15),%r15d
45 8b 9b 34 05 00 00                          | mov    0x534(%r11),%r11d
45 8b b5 14 02 00 00                          | mov    0x214(%r13),%r14d
45 8d 4a 01                                   | lea    0x1(%r10),%r9d
45 8d 61 ff                                   | lea    -0x1(%r9),%r12d
46 0f b7 9c 43 88 0b 00 00                    | movzwl 0xb88(%rbx,%r8,2),%r11d
46 8b 24 b5 e0 e6 39 82                       | mov    -0x7dc61920(,%r14,4),%r12d
47 8b 74 e5 10                                | mov    0x10(%r13,%r12,8),%r14d
47 8d 7c 76 03                                | lea    0x3(%r14,%r14,2),%r15d
47 8d 9c 2b 99 79 82 5a                       | lea    0x5a827999(%r11,%r13,1),%r11d
48 01 03                                      | add    %rax,(%rbx)
48 01 83 b0 00 00 00                          | add    %rax,0xb0(%rbx)
48 01 b4 24 c0 00 00 00                       | add    %rsi,0xc0(%rsp)
48 01 d2                                      | add    %rdx,%rdx
48 01 db                                      | add    %rbx,%rbx
48 01 e8                                      | add    %rbp,%rax
48 03 02                                      | add    (%rdx),%rax
48 03 04 24                                   | add    (%rsp),%rax
48 03 06                                      | add    (%rsi),%rax
48 03 0e                                      | add    (%rsi),%rcx
48 03 1c fd 60 eb 39 82                       | add    -0x7dc614a0(,%rdi,8),%rbx
48 03 83 e8 0a 00 00                          | add    0xae8(%rbx),%rax
48 03 bd 60 01 00 00                          | add    0x160(%rbp),%rdi
48 05 5c 01 00 00                             | add    $0x15c,%rax
48 05 68 03 00 00                             | add    $0x368,%rax
48 05 f8 3f 00 00                             | add    $0x3ff8,%rax
48 09 d5                                      | or     %rdx,%rbp
48 0b 41 28                                   | or     0x28(%rcx),%rax
48 0b 78 10                                   | or     0x10(%rax),%rdi
48 0b 87 98 05 00 00                          | or     0x598(%rdi),%rax
48 0d 79 00 70 14                             | or     $0x14700079,%rax
48 0f 42 d1                                   | cmovb  %rcx,%rdx
48 0f 42 da                                   | cmovb  %rdx,%rbx
48 0f 43 ca                                   | cmovae %rdx,%rcx
48 0f 43 d7                                   | cmovae %rdi,%rdx
48 0f 43 d8                                   | cmovae %rax,%rbx
48 0f 43 eb                                   | cmovae %rbx,%rbp
48 0f 44 15 4e d8 9a 01                       | cmove  0x19ad84e(%rip),%rdx
48 0f 44 c1                                   | cmove  %rcx,%rax
48 0f 44 d1                                   | cmove  %rcx,%rdx
48 0f 44 fb                                   | cmove  %rbx,%rdi
48 0f 45 15 fd fd bf 01                       | cmovne 0x1bffdfd(%rip),%rdx
48 0f 45 d9                                   | cmovne %rcx,%rbx
48 0f 45 f7                                   | cmovne %rdi,%rsi
48 0f 45 fa                                   | cmovne %rdx,%rdi
48 0f 46 c2                                   | cmovbe %rdx,%rax
48 0f 46 c3                                   | cmovbe %rbx,%rax
48 0f 47 c1                                   | cmova  %rcx,%rax
48 0f 47 c7                                   | cmova  %rdi,%rax
48 0f 47 ca                                   | cmova  %rdx,%rcx
48 0f 47 d6                                   | cmova  %rsi,%rdx
48 0f 48 c2                                   | cmovs  %rdx,%rax
48 0f 48 d7                                   | cmovs  %rdi,%rdx
48 0f 48 ea                                   | cmovs  %rdx,%rbp
48 0f 49 04 24                                | cmovns (%rsp),%rax
48 0f 49 c2                                   | cmovns %rdx,%rax
48 0f 4c d9                                   | cmovl  %rcx,%rbx
48 0f 4f fe                                   | cmovg  %rsi,%rdi
48 0f a3 06                                   | bt     %rax,(%rsi)
48 0f a3 5a 10                                | bt     %rbx,0x10(%rdx)
48 0f a3 7a 10                                | bt     %rdi,0x10(%rdx)
48 0f a3 ba 38 01 00 00                       | bt     %rdi,0x138(%rdx)
48 0f a3 c1                                   | bt     %rax,%rcx
48 0f a3 c6                                   | bt     %rax,%rsi
48 0f ab 2d c6 74 9d 01                       | bts    %rbp,0x19d74c6(%rip)
48 0f ab 3a                                   | bts    %rdi,(%rdx)
48 0f ab 55 30                                | bts    %rdx,0x30(%rbp)
48 0f ae 0d 00 eb 35 01                       | fxrstor64 0x135eb00(%rip)
48 0f af 87 80 00 00 00                       | imul   0x80(%rdi),%rax
48 0f af 8b 10 0a 00 00                       | imul   0xa10(%rbx),%rcx
48 0f af c5                                   | imul   %rbp,%rax
48 0f af d5                                   | imul   %rbp,%rdx
48 0f af f2                                   | imul   %rdx,%rsi
48 0f b3 06                                   | btr    %rax,(%rsi)
48 0f bd d7                                   | bsr    %rdi,%rdx
48 0f be 85 20 e1 3e 83                       | movsbq -0x7cc11ee0(%rbp),%rax
48 0f be fe                                   | movsbq %sil,%rdi
48 0f c1 43 08                                | xadd   %rax,0x8(%rbx)
48 0f c9                                      | bswap  %rcx
48 21 02                                      | and    %rax,(%rdx)
48 21 05 ef 5b 28 02                          | and    %rax,0x2285bef(%rip)
48 21 10                                      | and    %rdx,(%rax)
48 21 45 08                                   | and    %rax,0x8(%rbp)
48 21 d7                                      | and    %rdx,%rdi
48 21 df                                      | and    %rbx,%rdi
48 21 ee                                      | and    %rbp,%rsi
48 21 fe                                      | and    %rdi,%rsi
48 23 02                                      | and    (%rdx),%rax
48 23 13                                      | and    (%rbx),%rdx
48 23 42 50                                   | and    0x50(%rdx),%rax
48 23 50 18                                   | and    0x18(%rax),%rdx
48 23 5e 50                                   | and    0x50(%rsi),%rbx
48 29 2d 09 8e d6 01                          | sub    %rbp,0x1d68e09(%rip)
48 29 41 78                                   | sub    %rax,0x78(%rcx)
48 2b 30                                      | sub    (%rax),%rsi
48 2b 48 08                                   | sub    0x8(%rax),%rcx
48 2b 8c 24 90 00 00 00                       | sub    0x90(%rsp),%rcx
48 2b 97 d0 00 00 00                          | sub    0xd0(%rdi),%rdx
48 2b b0 a0 13 00 00                          | sub    0x13a0(%rax),%rsi
48 2d e2 04 00 00                             | sub    $0x4e2,%rax
48 31 d0                                      | xor    %rdx,%rax
48 31 d7                                      | xor    %rdx,%rdi
48 31 eb                                      | xor    %rbp,%rbx
48 31 ef                                      | xor    %rbp,%rdi
48 33 17                                      | xor    (%rdi),%rdx
48 33 4a 08                                   | xor    0x8(%rdx),%rcx
48 33 57 34                                   | xor    0x34(%rdi),%rdx
48 33 7e 08                                   | xor    0x8(%rsi),%rdi
48 33 83 b8 00 00 00                          | xor    0xb8(%rbx),%rax
48 33 90 a4 00 00 00                          | xor    0xa4(%rax),%rdx
48 35 ff ff 00 00                             | xor    $0xffff,%rax
48 39 0e                                      | cmp    %rcx,(%rsi)
48 39 2b                                      | cmp    %rbp,(%rbx)
48 39 9f 98 00 00 00                          | cmp    %rbx,0x98(%rdi)
48 39 c1                                      | cmp    %rax,%rcx
48 39 d6                                      | cmp    %rdx,%rsi
48 39 f2                                      | cmp    %rsi,%rdx
48 3b 1d 64 73 c1 01                          | cmp    0x1c17364(%rip),%rbx
48 3b 30                                      | cmp    (%rax),%rsi
48 3b 72 38                                   | cmp    0x38(%rdx),%rsi
48 3b 90 e0 08 00 00                          | cmp    0x8e0(%rax),%rdx
48 3d 0b 01 00 00                             | cmp    $0x10b,%rax
48 3d 0c fe ff ff                             | cmp    $0xfffffffffffffe0c,%rax
48 3d 58 23 ad 82                             | cmp    $0xffffffff82ad2358,%rax
48 3d 94 19 02 01                             | cmp    $0x1021994,%rax
48 3d e7 03 00 00                             | cmp    $0x3e7,%rax
48 3d e8 0f 00 00                             | cmp    $0xfe8,%rax
48 63 45 00                                   | movslq 0x0(%rbp),%rax
48 63 81 94 00 00 00                          | movslq 0x94(%rcx),%rax
48 63 ce                                      | movslq %esi,%rcx
48 63 d3                                      | movslq %ebx,%rdx
48 63 eb                                      | movslq %ebx,%rbp
48 63 f1                                      | movslq %ecx,%rsi
48 63 fa                                      | movslq %edx,%rdi
48 69 c8 00 ca 9a 3b                          | imul   $0x3b9aca00,%rax,%rcx
48 69 f0 e8 03 00 00                          | imul   $0x3e8,%rax,%rsi
48 81 8a f0 00 00 00 00 00 08 00              | orq    $0x80000,0xf0(%rdx)
48 81 a2 d8 13 00 00 ff ff fd ff              | andq   $0xfffffffffffdffff,0x13d8(%rdx)
48 81 a4 24 18 01 00 00 ff ff ff fe           | andq   $0xfffffffffeffffff,0x118(%rsp)
48 81 bb 98 00 00 00 40 e6 a1 82              | cmpq   $0xffffffff82a1e640,0x98(%rbx)
48 81 ea 00 04 00 00                          | sub    $0x400,%rdx
48 83 02 01                                   | addq   $0x1,(%rdx)
48 83 04 24 08                                | addq   $0x8,(%rsp)
48 83 25 6c c2 09 02 fb                       | andq   $0xfffffffffffffffb,0x209c26c(%rip)
48 83 78 48 00                                | cmpq   $0x0,0x48(%rax)
48 83 ba 48 0f 00 00 00                       | cmpq   $0x0,0xf48(%rdx)
48 83 c2 01                                   | add    $0x1,%rdx
48 83 c9 63                                   | or     $0x63,%rcx
48 83 d7 00                                   | adc    $0x0,%rdi
48 83 fa ff                                   | cmp    $0xffffffffffffffff,%rdx
48 85 d7                                      | test   %rdx,%rdi
48 87 6b 20                                   | xchg   %rbp,0x20(%rbx)
48 89 12                                      | mov    %rdx,(%rdx)
48 89 1c 25 98 07 a3 82                       | mov    %rbx,0xffffffff82a30798
48 89 1f                                      | mov    %rbx,(%rdi)
48 89 3c 24                                   | mov    %rdi,(%rsp)
48 89 a0 98 00 00 00                          | mov    %rsp,0x98(%rax)
48 89 b3 98 09 00 00                          | mov    %rsi,0x998(%rbx)
48 89 bb e0 00 00 00                          | mov    %rdi,0xe0(%rbx)
48 89 bf 58 01 00 00                          | mov    %rdi,0x158(%rdi)
48 89 d3                                      | mov    %rdx,%rbx
48 89 d8                                      | mov    %rbx,%rax
48 89 e1                                      | mov    %rsp,%rcx
48 89 f3                                      | mov    %rsi,%rbx
48 89 f5                                      | mov    %rsi,%rbp
48 8b 04 24                                   | mov    (%rsp),%rax
48 8b 1b                                      | mov    (%rbx),%rbx
48 8b 3c cd 60 eb 39 82                       | mov    -0x7dc614a0(,%rcx,8),%rdi
48 8b 48 20                                   | mov    0x20(%rax),%rcx
48 8b 80 e0 08 00 00                          | mov    0x8e0(%rax),%rax
48 8b 83 98 00 00 00                          | mov    0x98(%rbx),%rax
48 8b 9b 40 04 00 00                          | mov    0x440(%rbx),%rbx
48 8b bc 6b 28 05 00 00                       | mov    0x528(%rbx,%rbp,2),%rdi
48 8d 3c c1                                   | lea    (%rcx,%rax,8),%rdi
48 8d 46 fc                                   | lea    -0x4(%rsi),%rax
48 8d 5c 24 30                                | lea    0x30(%rsp),%rbx
48 8d 8d 48 04 00 00                          | lea    0x448(%rbp),%rcx
48 8d 94 d3 a0 09 00 00                       | lea    0x9a0(%rbx,%rdx,8),%rdx
48 8d ab d8 00 00 00                          | lea    0xd8(%rbx),%rbp
48 a9 ff ff d4 fb                             | test   $0xfffffffffbd4ffff,%rax
48 b8 1a 00 00 00 ff ff ff ff                 | movabs $0xffffffff0000001a,%rax
48 b8 46 53 56 65 72 69 74 79                 | movabs $0x7974697265565346,%rax
48 b8 79 5f 72 65 63 75 72 73                 | movabs $0x7372756365725f79,%rax
48 b8 b5 01 02 00 00 00 80 00                 | movabs $0x800000000201b5,%rax
48 b9 12 81 53 00 12 03 00 00                 | movabs $0x31200538112,%rcx
48 b9 66 73 63 72 79 70 74 00                 | movabs $0x74707972637366,%rcx
48 b9 7c ae 03 00 00 00 ad de                 | movabs $0xdead00000003ae7c,%rcx
48 ba 00 f0 ff ff ff ff ff 7f                 | movabs $0x7ffffffffffff000,%rdx
48 ba c3 f5 28 5c 8f c2 f5 28                 | movabs $0x28f5c28f5c28f5c3,%rdx
48 bb 15 00 00 00 00 00 00 80                 | movabs $0x8000000000000015,%rbx
48 be 03 7d c1 25 02 00 00 00                 | movabs $0x225c17d03,%rsi
48 be 80 00 00 00 00 00 00 04                 | movabs $0x400000000000080,%rsi
48 bf 9c 17 a5 54 94 19 eb 12                 | movabs $0x12eb199454a5179c,%rdi
48 c1 e7 20                                   | shl    $0x20,%rdi
48 c7 04 c5 f8 46 2c 83 00 00 00 00           | movq   $0x0,-0x7cd3b908(,%rax,8)
48 c7 42 10 00 00 00 00                       | movq   $0x0,0x10(%rdx)
48 d3 c0                                      | rol    %cl,%rax
48 d3 e7                                      | shl    %cl,%rdi
48 d3 ff                                      | sar    %cl,%rdi
48 f7 76 10                                   | divq   0x10(%rsi)
48 f7 c6 9f ff ff ff                          | test   $0xffffffffffffff9f,%rsi
48 f7 d7                                      | not    %rdi
48 f7 f7                                      | div    %rdi
48 ff 84 d0 88 00 00 00                       | incq   0x88(%rax,%rdx,8)
49 01 29                                      | add    %rbp,(%r9)
49 01 9c 24 f8 00 00 00                       | add    %rbx,0xf8(%r12)
49 01 b2 b0 00 00 00                          | add    %rsi,0xb0(%r10)
49 01 c1                                      | add    %rax,%r9
49 01 c6                                      | add    %rax,%r14
49 01 d9                                      | add    %rbx,%r9
49 01 ea                                      | add    %rbp,%r10
49 01 f1                                      | add    %rsi,%r9
49 01 fd                                      | add    %rdi,%r13
49 03 3c d0                                   | add    (%r8,%rdx,8),%rdi
49 03 42 48                                   | add    0x48(%r10),%rax
49 03 51 20                                   | add    0x20(%r9),%rdx
49 03 56 20                                   | add    0x20(%r14),%rdx
49 03 ad c8 00 00 00                          | add    0xc8(%r13),%rbp
49 09 db                                      | or     %rbx,%r11
49 09 dc                                      | or     %rbx,%r12
49 09 ec                                      | or     %rbp,%r12
49 09 f1                                      | or     %rsi,%r9
49 09 f3                                      | or     %rsi,%r11
49 09 f5                                      | or     %rsi,%r13
49 0f 42 d6                                   | cmovb  %r14,%rdx
49 0f 42 e8                                   | cmovb  %r8,%rbp
49 0f 45 d3                                   | cmovne %r11,%rdx
49 0f 49 fc                                   | cmovns %r12,%rdi
49 0f 4c d1                                   | cmovl  %r9,%rdx
49 0f 4f fe                                   | cmovg  %r14,%rdi
49 0f a3 86 28 02 00 00                       | bt     %rax,0x228(%r14)
49 0f a3 f9                                   | bt     %rdi,%r9
49 0f ab 02                                   | bts    %rax,(%r10)
49 0f ab d1                                   | bts    %rdx,%r9
49 0f af c4                                   | imul   %r12,%rax
49 0f af cd                                   | imul   %r13,%rcx
49 0f af cf                                   | imul   %r15,%rcx
49 0f af f2                                   | imul   %r10,%rsi
49 0f af fc                                   | imul   %r12,%rdi
49 0f b3 1f                                   | btr    %rbx,(%r15)
49 0f ba ed 3e                                | bts    $0x3e,%r13
49 0f bd f3                                   | bsr    %r11,%rsi
49 21 04 24                                   | and    %rax,(%r12)
49 21 c7                                      | and    %rax,%r15
49 21 cd                                      | and    %rcx,%r13
49 23 39                                      | and    (%r9),%rdi
49 29 c7                                      | sub    %rax,%r15
49 2b 1c 24                                   | sub    (%r12),%rbx
49 2b 5d 60                                   | sub    0x60(%r13),%rbx
49 2b 85 c8 08 00 00                          | sub    0x8c8(%r13),%rax
49 33 be 98 00 00 00                          | xor    0x98(%r14),%rdi
49 39 be 10 03 00 00                          | cmp    %rdi,0x310(%r14)
49 39 f3                                      | cmp    %rsi,%r11
49 3b 45 08                                   | cmp    0x8(%r13),%rax
49 3b 76 08                                   | cmp    0x8(%r14),%rsi
49 3b 82 38 02 00 00                          | cmp    0x238(%r10),%rax
49 3b 84 24 20 09 00 00                       | cmp    0x920(%r12),%rax
49 3b ad 00 0f 00 00                          | cmp    0xf00(%r13),%rbp
49 3b b0 98 02 00 00                          | cmp    0x298(%r8),%rsi
49 3b bf f0 03 00 00                          | cmp    0x3f0(%r15),%rdi
49 63 04 83                                   | movslq (%r11,%rax,4),%rax
49 63 07                                      | movslq (%r15),%rax
49 63 14 83                                   | movslq (%r11,%rax,4),%rdx
49 63 7b 10                                   | movslq 0x10(%r11),%rdi
49 63 ce                                      | movslq %r14d,%rcx
49 63 d5                                      | movslq %r13d,%rdx
49 81 46 08 00 20 00 00                       | addq   $0x2000,0x8(%r14)
49 81 e7 ff fe ff ff                          | and    $0xfffffffffffffeff,%r15
49 81 e9 80 03 00 00                          | sub    $0x380,%r9
49 83 46 58 01                                | addq   $0x1,0x58(%r14)
49 83 ba 90 00 00 00 00                       | cmpq   $0x0,0x90(%r10)
49 83 bf 40 03 00 00 00                       | cmpq   $0x0,0x340(%r15)
49 83 cf 03                                   | or     $0x3,%r15
49 83 d0 00                                   | adc    $0x0,%r8
49 83 f9 f0                                   | cmp    $0xfffffffffffffff0,%r9
49 89 0e                                      | mov    %rcx,(%r14)
49 89 11                                      | mov    %rdx,(%r9)
49 89 27                                      | mov    %rsp,(%r15)
49 89 57 20                                   | mov    %rdx,0x20(%r15)
49 89 74 0f f8                                | mov    %rsi,-0x8(%r15,%rcx,1)
49 89 bc 24 90 00 00 00                       | mov    %rdi,0x90(%r12)
49 89 c1                                      | mov    %rax,%r9
49 89 ca                                      | mov    %rcx,%r10
49 89 da                                      | mov    %rbx,%r10
49 89 e2                                      | mov    %rsp,%r10
49 89 e4                                      | mov    %rsp,%r12
49 8b 04 c0                                   | mov    (%r8,%rax,8),%rax
49 8b 14 24                                   | mov    (%r12),%rdx
49 8b 6b 08                                   | mov    0x8(%r11),%rbp
49 8b 88 a0 00 00 00                          | mov    0xa0(%r8),%rcx
49 8b 92 f0 03 00 00                          | mov    0x3f0(%r10),%rdx
49 8b a8 20 01 00 00                          | mov    0x120(%r8),%rbp
49 8b ba 38 02 00 00                          | mov    0x238(%r10),%rdi
49 8d 6b fe                                   | lea    -0x2(%r11),%rbp
49 8d 8d 98 04 00 00                          | lea    0x498(%r13),%rcx
49 bb c3 f5 28 5c 8f c2 f5 28                 | movabs $0x28f5c28f5c28f5c3,%r11
49 bd 01 01 01 01 01 01 01 01                 | movabs $0x101010101010101,%r13
49 bf eb 83 b5 80 46 86 c8 61                 | movabs $0x61c8864680b583eb,%r15
49 c1 c2 1f                                   | rol    $0x1f,%r10
49 c1 fc 06                                   | sar    $0x6,%r12
49 c7 43 28 00 00 00 00                       | movq   $0x0,0x28(%r11)
49 f7 00 9f ff ff ff                          | testq  $0xffffffffffffff9f,(%r8)
49 f7 42 08 00 50 00 00                       | testq  $0x5000,0x8(%r10)
49 f7 c4 9f ff ff ff                          | test   $0xffffffffffffff9f,%r12
49 f7 d8                                      | neg    %r8
49 f7 f5                                      | div    %r13
49 f7 fb                                      | idiv   %r11
4a 89 1c 21                                   | mov    %rbx,(%rcx,%r12,1)
4a 8d 2c e3                                   | lea    (%rbx,%r12,8),%rbp
4b 21 44 ec f8                                | and    %rax,-0x8(%r12,%r13,8)
4b 23 3c d8                                   | and    (%r8,%r11,8),%rdi
4c 01 42 20                                   | add    %r8,0x20(%rdx)
4c 01 d1                                      | add    %r10,%rcx
4c 01 ea                                      | add    %r13,%rdx
4c 03 02                                      | add    (%rdx),%r8
4c 03 23                                      | add    (%rbx),%r12
4c 03 62 30                                   | add    0x30(%rdx),%r12
4c 03 8b c8 00 00 00                          | add    0xc8(%rbx),%r9
4c 03 ba c0 03 00 00                          | add    0x3c0(%rdx),%r15
4c 09 c1                                      | or     %r8,%rcx
4c 09 d0                                      | or     %r10,%rax
4c 09 d6                                      | or     %r10,%rsi
4c 09 f5                                      | or     %r14,%rbp
4c 09 f6                                      | or     %r14,%rsi
4c 09 fa                                      | or     %r15,%rdx
4c 0f 42 d0                                   | cmovb  %rax,%r10
4c 0f 42 da                                   | cmovb  %rdx,%r11
4c 0f 42 e0                                   | cmovb  %rax,%r12
4c 0f 42 f6                                   | cmovb  %rsi,%r14
4c 0f 43 d0                                   | cmovae %rax,%r10
4c 0f 43 e2                                   | cmovae %rdx,%r12
4c 0f 44 3d 39 5d 90 01                       | cmove  0x1905d39(%rip),%r15
4c 0f 44 db                                   | cmove  %rbx,%r11
4c 0f 44 f1                                   | cmove  %rcx,%r14
4c 0f 44 f7                                   | cmove  %rdi,%r14
4c 0f 45 05 33 5e 99 01                       | cmovne 0x1995e33(%rip),%r8
4c 0f 45 ca                                   | cmovne %rdx,%r9
4c 0f 45 d7                                   | cmovne %rdi,%r10
4c 0f 47 c9                                   | cmova  %rcx,%r9
4c 0f 47 cb                                   | cmova  %rbx,%r9
4c 0f 47 e0                                   | cmova  %rax,%r12
4c 0f 47 f0                                   | cmova  %rax,%r14
4c 0f 48 e9                                   | cmovs  %rcx,%r13
4c 0f 49 cf                                   | cmovns %rdi,%r9
4c 0f 4f e0                                   | cmovg  %rax,%r12
4c 0f a3 3b                                   | bt     %r15,(%rbx)
4c 0f af d9                                   | imul   %rcx,%r11
4c 0f b3 20                                   | btr    %r12,(%rax)
4c 0f b3 45 00                                | btr    %r8,0x0(%rbp)
4c 0f bd ce                                   | bsr    %rsi,%r9
4c 21 d3                                      | and    %r10,%rbx
4c 23 0d c9 3c ba 01                          | and    0x1ba3cc9(%rip),%r9
4c 23 34 24                                   | and    (%rsp),%r14
4c 29 73 68                                   | sub    %r14,0x68(%rbx)
4c 29 cd                                      | sub    %r9,%rbp
4c 29 d6                                      | sub    %r10,%rsi
4c 29 ed                                      | sub    %r13,%rbp
4c 29 f6                                      | sub    %r14,%rsi
4c 2b 2b                                      | sub    (%rbx),%r13
4c 33 91 ec 00 00 00                          | xor    0xec(%rcx),%r10
4c 39 35 06 ca 9c 01                          | cmp    %r14,0x19cca06(%rip)
4c 39 3b                                      | cmp    %r15,(%rbx)
4c 39 41 08                                   | cmp    %r8,0x8(%rcx)
4c 39 6c 24 18                                | cmp    %r13,0x18(%rsp)
4c 39 a0 80 09 00 00                          | cmp    %r12,0x980(%rax)
4c 39 a2 88 00 00 00                          | cmp    %r12,0x88(%rdx)
4c 39 af 98 00 00 00                          | cmp    %r13,0x98(%rdi)
4c 39 d8                                      | cmp    %r11,%rax
4c 39 f2                                      | cmp    %r14,%rdx
4c 3b a5 a0 03 00 00                          | cmp    0x3a0(%rbp),%r12
4c 3b af 00 0c 00 00                          | cmp    0xc00(%rdi),%r13
4c 3b b4 24 98 00 00 00                       | cmp    0x98(%rsp),%r14
4c 63 48 40                                   | movslq 0x40(%rax),%r9
4c 63 8c 24 9c 00 00 00                       | movslq 0x9c(%rsp),%r9
4c 63 9c 24 94 00 00 00                       | movslq 0x94(%rsp),%r11
4c 89 38                                      | mov    %r15,(%rax)
4c 89 42 70                                   | mov    %r8,0x70(%rdx)
4c 89 83 80 00 00 00                          | mov    %r8,0x80(%rbx)
4c 89 af 30 06 00 00                          | mov    %r13,0x630(%rdi)
4c 89 d2                                      | mov    %r10,%rdx
4c 89 d7                                      | mov    %r10,%rdi
4c 89 df                                      | mov    %r11,%rdi
4c 89 f0                                      | mov    %r14,%rax
4c 8b 68 40                                   | mov    0x40(%rax),%r13
4c 8b bc 24 88 00 00 00                       | mov    0x88(%rsp),%r15
4c 8d 0c d5 00 00 00 00                       | lea    0x0(,%rdx,8),%r9
4c 8d 47 01                                   | lea    0x1(%rdi),%r8
4c 8d 68 f8                                   | lea    -0x8(%rax),%r13
4c 8d 6b 40                                   | lea    0x40(%rbx),%r13
4c 8d 70 f0                                   | lea    -0x10(%rax),%r14
4c 8d 81 c0 11 03 00                          | lea    0x311c0(%rcx),%r8
4c 8d 8a 00 10 00 00                          | lea    0x1000(%rdx),%r9
4d 01 cc                                      | add    %r9,%r12
4d 01 ce                                      | add    %r9,%r14
4d 03 2c 17                                   | add    (%r15,%rdx,1),%r13
4d 03 67 18                                   | add    0x18(%r15),%r12
4d 03 6e 30                                   | add    0x30(%r14),%r13
4d 03 a0 c8 00 00 00                          | add    0xc8(%r8),%r12
4d 03 ae 80 00 00 00                          | add    0x80(%r14),%r13
4d 0f 42 c2                                   | cmovb  %r10,%r8
4d 0f 44 c2                                   | cmove  %r10,%r8
4d 0f 44 f5                                   | cmove  %r13,%r14
4d 0f 46 e7                                   | cmovbe %r15,%r12
4d 0f a3 2f                                   | bt     %r13,(%r15)
4d 21 d8                                      | and    %r11,%r8
4d 21 e6                                      | and    %r12,%r14
4d 29 c6                                      | sub    %r8,%r14
4d 29 d5                                      | sub    %r10,%r13
4d 29 fd                                      | sub    %r15,%r13
4d 39 2c 24                                   | cmp    %r13,(%r12)
4d 39 53 30                                   | cmp    %r10,0x30(%r11)
4d 39 c7                                      | cmp    %r8,%r15
4d 39 d8                                      | cmp    %r11,%r8
4d 39 e7                                      | cmp    %r12,%r15
4d 3b b7 30 06 00 00                          | cmp    0x630(%r15),%r14
4d 63 c8                                      | movslq %r8d,%r9
4d 63 d6                                      | movslq %r14d,%r10
4d 63 df                                      | movslq %r15d,%r11
4d 63 e0                                      | movslq %r8d,%r12
4d 63 f8                                      | movslq %r8d,%r15
4d 69 c0 4f ec c4 4e                          | imul   $0x4ec4ec4f,%r8,%r8
4d 89 2b                                      | mov    %r13,(%r11)
4d 89 31                                      | mov    %r14,(%r9)
4d 89 3e                                      | mov    %r15,(%r14)
4d 89 5c fe f8                                | mov    %r11,-0x8(%r14,%rdi,8)
4d 89 68 10                                   | mov    %r13,0x10(%r8)
4d 89 87 98 09 00 00                          | mov    %r8,0x998(%r15)
4d 89 9a 80 00 00 00                          | mov    %r11,0x80(%r10)
4d 89 cf                                      | mov    %r9,%r15
4d 89 fa                                      | mov    %r15,%r10
4d 8b 54 11 f8                                | mov    -0x8(%r9,%rdx,1),%r10
4d 8b 59 08                                   | mov    0x8(%r9),%r11
4d 8b 7f 70                                   | mov    0x70(%r15),%r15
4d 8b 9e 20 01 00 00                          | mov    0x120(%r14),%r11
4d 8b bd 80 00 00 00                          | mov    0x80(%r13),%r15
4d 8b bf 80 00 00 00                          | mov    0x80(%r15),%r15
4d 8d 65 18                                   | lea    0x18(%r13),%r12
4d 8d 72 24                                   | lea    0x24(%r10),%r14
4d 8d 84 24 08 01 00 00                       | lea    0x108(%r12),%r8
4d 8d 9f 98 00 00 00                          | lea    0x98(%r15),%r11
4d 8d a7 d8 08 00 00                          | lea    0x8d8(%r15),%r12
4d 8d be 00 02 00 00                          | lea    0x200(%r14),%r15
4e 63 04 95 a0 a6 b5 82                       | movslq -0x7d4a5960(,%r10,4),%r8
4e 89 74 e5 00                                | mov    %r14,0x0(%rbp,%r12,8)
4e 8b 34 f0                                   | mov    (%rax,%r14,8),%r14
4e 8d b4 25 ff 0f 00 00                       | lea    0xfff(%rbp,%r12,1),%r14
4f 8b 34 1c                                   | mov    (%r12,%r11,1),%r14
4f 8b 8c ca 90 00 00 00                       | mov    0x90(%r10,%r9,8),%r9
4f 8d 6c ad 00                                | lea    0x0(%r13,%r13,4),%r13
4f 8d 8c 38 ff 0f 00 00                       | lea    0xfff(%r8,%r15,1),%r9
65 01 10                                      | add    %edx,%gs:(%rax)
65 0f b1 32                                   | cmpxchg %esi,%gs:(%rdx)
65 44 8b 25 c1 d6 ff 7e                       | mov    %gs:0x7effd6c1(%rip),%r12d
65 44 8b 89 c0 11 03 00                       | mov    %gs:0x311c0(%rcx),%r9d
65 48 83 0d f0 4c fd 7e 02                    | orq    $0x2,%gs:0x7efd4cf0(%rip)
65 48 8b 01                                   | mov    %gs:(%rcx),%rax
65 48 8b 0c 25 80 fb 01 00                    | mov    %gs:0x1fb80,%rcx
65 49 01 45 00                                | add    %rax,%gs:0x0(%r13)
65 4a ff 44 28 10                             | incq   %gs:0x10(%rax,%r13,1)
65 4c 2b 0c 25 28 00 00 00                    | sub    %gs:0x28,%r9
65 8b 49 04                                   | mov    %gs:0x4(%rcx),%ecx
65 ff 00                                      | incl   %gs:(%rax)
65 ff 05 09 d6 01 7f                          | incl   %gs:0x7f01d609(%rip)
65 ff 34 25 14 60 00 00                       | push   %gs:0x6014
66 01 48 02                                   | add    %cx,0x2(%rax)
66 03 54 24 20                                | add    0x20(%rsp),%dx
66 03 73 48                                   | add    0x48(%rbx),%si
66 05 dd 65                                   | add    $0x65dd,%ax
66 0b 15 b8 19 1d 02                          | or     0x21d19b8(%rip),%dx
66 0b 46 38                                   | or     0x38(%rsi),%ax
66 0b 47 38                                   | or     0x38(%rdi),%ax
66 0f 70 c0 93                                | pshufd $0x93,%xmm0,%xmm0
66 0f 70 db 4e                                | pshufd $0x4e,%xmm3,%xmm3
66 0f ae f1                                   | tpause %ecx
66 23 5c 24 06                                | and    0x6(%rsp),%bx
66 25 fb fc                                   | and    $0xfcfb,%ax
66 2b 93 c8 00 00 00                          | sub    0xc8(%rbx),%dx
66 2b 99 f4 00 00 00                          | sub    0xf4(%rcx),%bx
66 33 42 0c                                   | xor    0xc(%rdx),%ax
66 33 84 09 00 19 0b 82                       | xor    -0x7df4e700(%rcx,%rcx,1),%ax
66 33 85 9a 00 00 00                          | xor    0x9a(%rbp),%ax
66 39 01                                      | cmp    %ax,(%rcx)
66 39 03                                      | cmp    %ax,(%rbx)
66 39 32                                      | cmp    %si,(%rdx)
66 39 8c 30 0a 01 00 00                       | cmp    %cx,0x10a(%rax,%rsi,1)
66 39 d6                                      | cmp    %dx,%si
66 39 f0                                      | cmp    %si,%ax
66 39 f8                                      | cmp    %di,%ax
66 3b 41 3c                                   | cmp    0x3c(%rcx),%ax
66 3b 44 24 16                                | cmp    0x16(%rsp),%ax
66 3d 12 5b                                   | cmp    $0x5b12,%ax
66 3d 37 33                                   | cmp    $0x3337,%ax
66 3d 43 10                                   | cmp    $0x1043,%ax
66 3d 4c 25                                   | cmp    $0x254c,%ax
66 3d 65 98                                   | cmp    $0x9865,%ax
66 3d 66 a1                                   | cmp    $0xa166,%ax
66 3d 80 00                                   | cmp    $0x80,%ax
66 3d 9d 00                                   | cmp    $0x9d,%ax
66 3d b8 00                                   | cmp    $0xb8,%ax
66 3d c2 24                                   | cmp    $0x24c2,%ax
66 41 09 41 3c                                | or     %ax,0x3c(%r9)
66 41 0f 72 f0 14                             | pslld  $0x14,%xmm8
66 41 39 40 54                                | cmp    %ax,0x54(%r8)
66 41 39 f8                                   | cmp    %di,%r8w
66 41 3b 50 56                                | cmp    0x56(%r8),%dx
66 41 81 3c 24 66 90                          | cmpw   $0x9066,(%r12)
66 41 81 fe 00 40                             | cmp    $0x4000,%r14w
66 41 c1 c8 04                                | ror    $0x4,%r8w
66 41 f7 c7 00 40                             | test   $0x4000,%r15w
66 42 83 3c 10 ff                             | cmpw   $0xffff,(%rax,%r10,1)
66 42 89 44 22 fe                             | mov    %ax,-0x2(%rdx,%r12,1)
66 44 03 40 18                                | add    0x18(%rax),%r8w
66 44 09 04 43                                | or     %r8w,(%rbx,%rax,2)
66 44 09 4c 44 04                             | or     %r9w,0x4(%rsp,%rax,2)
66 44 33 a3 dc 00 00 00                       | xor    0xdc(%rbx),%r12w
66 44 39 74 55 18                             | cmp    %r14w,0x18(%rbp,%rdx,2)
66 44 3b 64 24 20                             | cmp    0x20(%rsp),%r12w
66 44 3b 70 08                                | cmp    0x8(%rax),%r14w
66 44 89 02                                   | mov    %r8w,(%rdx)
66 44 89 05 89 c2 be 01                       | mov    %r8w,0x1bec289(%rip)
66 44 89 16                                   | mov    %r10w,(%rsi)
66 44 89 73 0e                                | mov    %r14w,0xe(%rbx)
66 44 89 a4 24 98 00 00 00                    | mov    %r12w,0x98(%rsp)
66 45 0f d4 f7                                | paddq  %xmm15,%xmm14
66 45 89 6e 6c                                | mov    %r13w,0x6c(%r14)
66 46 89 5c c4 3a                             | mov    %r11w,0x3a(%rsp,%r8,8)
66 81 78 04 00 80                             | cmpw   $0x8000,0x4(%rax)
66 81 7d 04 28 05                             | cmpw   $0x528,0x4(%rbp)
66 83 38 13                                   | cmpw   $0x13,(%rax)
66 83 80 08 01 00 00 01                       | addw   $0x1,0x108(%rax)
66 83 8b 46 08 00 00 01                       | orw    $0x1,0x846(%rbx)
66 85 c9                                      | test   %cx,%cx
66 89 0c 02                                   | mov    %cx,(%rdx,%rax,1)
66 89 5a 02                                   | mov    %bx,0x2(%rdx)
66 89 87 fa 0f 00 00                          | mov    %ax,0xffa(%rdi)
66 89 8f d0 00 00 00                          | mov    %cx,0xd0(%rdi)
66 89 9f b8 00 00 00                          | mov    %bx,0xb8(%rdi)
66 a9 00 d0                                   | test   $0xd000,%ax
66 b8 18 00                                   | mov    $0x18,%ax
66 d1 e8                                      | shr    %ax
66 e5 10                                      | in     $0x10,%ax
66 f7 42 06 3f ff                             | testw  $0xff3f,0x6(%rdx)
68 59 01 00 81                                | push   $0xffffffff81000159
68 e2 0e 00 00                                | push   $0xee2
69 3d 8a cb 49 01 e8 03 00 00                 | imul   $0x3e8,0x149cb8a(%rip),%edi
69 52 60 47 86 c8 61                          | imul   $0x61c88647,0x60(%rdx),%edx
69 c8 7e b6 00 00                             | imul   $0xb67e,%eax,%ecx
6a 07                                         | push   $0x7
6a 20                                         | push   $0x20
6a 29                                         | push   $0x29
6a 2c                                         | push   $0x2c
6a 3e                                         | push   $0x3e
6a 43                                         | push   $0x43
6a 61                                         | push   $0x61
6a 81                                         | push   $0xffffffffffffff81
6a ad                                         | push   $0xffffffffffffffad
6a b0                                         | push   $0xffffffffffffffb0
6a cf                                         | push   $0xffffffffffffffcf
6a d6                                         | push   $0xffffffffffffffd6
6a de                                         | push   $0xffffffffffffffde
6a eb                                         | push   $0xffffffffffffffeb
6a ec                                         | push   $0xffffffffffffffec
6a ef                                         | push   $0xffffffffffffffef
6a f3                                         | push   $0xfffffffffffffff3
6a fd                                         | push   $0xfffffffffffffffd
6b c1 64                                      | imul   $0x64,%ecx,%eax
70 08                                         | jo     0xffffffff81135af5
70 53                                         | jo     0xffffffff8114b25b
72 05                                         | jb     0xffffffff81023bb2
72 27                                         | jb     0xffffffff8109f792
72 2b                                         | jb     0xffffffff81034ccf
72 39                                         | jb     0xffffffff810006ae
72 3f                                         | jb     0xffffffff810661b3
72 55                                         | jb     0xffffffff8116247b
72 68                                         | jb     0xffffffff8109d96b
72 6e                                         | jb     0xffffffff81084d6e
72 b0                                         | jb     0xffffffff81017f92
72 b5                                         | jb     0xffffffff811d73a8
72 c7                                         | jb     0xffffffff81000fe5
73 69                                         | jae    0xffffffff81300654
73 6e                                         | jae    0xffffffff8111a846
73 6f                                         | jae    0xffffffff8107afdd
73 76                                         | jae    0xffffffff81018206
73 9b                                         | jae    0xffffffff8127fd4c
73 9f                                         | jae    0xffffffff81057e54
73 a3                                         | jae    0xffffffff810ba7af
73 b3                                         | jae    0xffffffff810d5b22
73 c2                                         | jae    0xffffffff810071c9
73 e9                                         | jae    0xffffffff810c58cb
73 ed                                         | jae    0xffffffff81077399
73 f7                                         | jae    0xffffffff8154d584
74 19                                         | je     0xffffffff810073e3
74 1d                                         | je     0xffffffff81010a64
74 1e                                         | je     0xffffffff8100b76b
74 db                                         | je     0xffffffff810048cd
74 ef                                         | je     0xffffffff8103833f
75 02                                         | jne    0xffffffff81020811
75 06                                         | jne    0xffffffff81000195
75 16                                         | jne    0xffffffff81000195
75 1b                                         | jne    0xffffffff81009e65
75 28                                         | jne    0xffffffff8100a896
75 47                                         | jne    0xffffffff8101b7d5
75 48                                         | jne    0xffffffff810030c5
75 64                                         | jne    0xffffffff81000da0
75 66                                         | jne    0xffffffff8104c919
75 6a                                         | jne    0xffffffff81010a5a
75 71                                         | jne    0xffffffff81012eb0
75 83                                         | jne    0xffffffff81039a7d
75 9e                                         | jne    0xffffffff81009dc3
75 bf                                         | jne    0xffffffff8100988c
75 dc                                         | jne    0xffffffff8100734f
75 e8                                         | jne    0xffffffff81004ef5
76 13                                         | jbe    0xffffffff8104c315
76 39                                         | jbe    0xffffffff81005bfc
76 49                                         | jbe    0xffffffff81003bd2
76 53                                         | jbe    0xffffffff8104ef7b
76 54                                         | jbe    0xffffffff810038a8
76 5e                                         | jbe    0xffffffff81003aba
76 84                                         | jbe    0xffffffff812baabb
76 95                                         | jbe    0xffffffff814e5b31
76 9f                                         | jbe    0xffffffff81043880
76 bc                                         | jbe    0xffffffff810bec6b
76 d5                                         | jbe    0xffffffff813bed2a
77 0f                                         | ja     0xffffffff8105b8b8
77 78                                         | ja     0xffffffff813c097b
77 7d                                         | ja     0xffffffff81048b72
77 9c                                         | ja     0xffffffff8115ce2f
77 aa                                         | ja     0xffffffff811855a0
77 db                                         | ja     0xffffffff811dfddd
77 eb                                         | ja     0xffffffff811639aa
78 09                                         | js     0xffffffff810c98b1
78 0e                                         | js     0xffffffff8102aa8d
78 19                                         | js     0xffffffff8101db1a
78 5a                                         | js     0xffffffff8100b02b
78 5d                                         | js     0xffffffff810d5aa8
78 61                                         | js     0xffffffff812fe6fe
78 87                                         | js     0xffffffff810ee566
78 93                                         | js     0xffffffff8134c83f
78 a0                                         | js     0xffffffff8138146f
78 c0                                         | js     0xffffffff811e11e1
78 ce                                         | js     0xffffffff81375c8f
79 08                                         | jns    0xffffffff8109fa62
79 11                                         | jns    0xffffffff810082c0
79 21                                         | jns    0xffffffff81592786
79 2c                                         | jns    0xffffffff813af497
79 65                                         | jns    0xffffffff8161b84e
79 7c                                         | jns    0xffffffff8115524b
79 97                                         | jns    0xffffffff8119fa0d
79 99                                         | jns    0xffffffff817990a5
79 a6                                         | jns    0xffffffff814a6319
79 c4                                         | jns    0xffffffff81518af8
79 d3                                         | jns    0xffffffff811b560e
79 e9                                         | jns    0xffffffff8198e222
79 f5                                         | jns    0xffffffff81484515
7c 07                                         | jl     0xffffffff810fef79
7c 1a                                         | jl     0xffffffff81241764
7c 37                                         | jl     0xffffffff81128682
7c 51                                         | jl     0xffffffff81437332
7c 52                                         | jl     0xffffffff810ceeb8
7c b6                                         | jl     0xffffffff8139d4e1
7c ca                                         | jl     0xffffffff8143f7fd
7c ee                                         | jl     0xffffffff8129d38b
7d 11                                         | jge    0xffffffff811bc4c1
7d 35                                         | jge    0xffffffff81508829
7d 48                                         | jge    0xffffffff8147d6e9
7d 52                                         | jge    0xffffffff81799bd4
7d 80                                         | jge    0xffffffff8196d094
7d 83                                         | jge    0xffffffff810f141f
7d 93                                         | jge    0xffffffff810e8c9e
7e 28                                         | jle    0xffffffff81043885
7e 3b                                         | jle    0xffffffff81161292
7e 46                                         | jle    0xffffffff810b67b8
7e 4d                                         | jle    0xffffffff8121a48b
7e 54                                         | jle    0xffffffff81070a76
7e 64                                         | jle    0xffffffff81086d72
7e 77                                         | jle    0xffffffff810eddeb
7e 82                                         | jle    0xffffffff81017737
7e 9b                                         | jle    0xffffffff815e6140
7e ab                                         | jle    0xffffffff8130e206
7e ad                                         | jle    0xffffffff811730aa
7e b1                                         | jle    0xffffffff814edd52
7e bc                                         | jle    0xffffffff81068877
7e ce                                         | jle    0xffffffff81376c31
7e d4                                         | jle    0xffffffff818f3dac
7e f1                                         | jle    0xffffffff8100b97c
7f 04                                         | jg     0xffffffff810a2dfc
7f 07                                         | jg     0xffffffff810072e7
7f 26                                         | jg     0xffffffff81086966
7f 30                                         | jg     0xffffffff810e99cc
7f 32                                         | jg     0xffffffff8109a06a
7f 46                                         | jg     0xffffffff8107cfe7
7f 5b                                         | jg     0xffffffff81100cd7
7f 74                                         | jg     0xffffffff81209b18
7f 7e                                         | jg     0xffffffff813200f1
7f 94                                         | jg     0xffffffff81127552
7f 99                                         | jg     0xffffffff81069185
7f a1                                         | jg     0xffffffff811a4b91
7f b8                                         | jg     0xffffffff8116a035
7f c2                                         | jg     0xffffffff81019469
7f da                                         | jg     0xffffffff811b9a17
7f f1                                         | jg     0xffffffff810e160a
80 46 02 01                                   | addb   $0x1,0x2(%rsi)
80 48 20 03                                   | orb    $0x3,0x20(%rax)
80 7b ff 70                                   | cmpb   $0x70,-0x1(%rbx)
80 7e 14 00                                   | cmpb   $0x0,0x14(%rsi)
80 85 93 00 00 00 02                          | addb   $0x2,0x93(%rbp)
80 8e dc 02 00 00 10                          | orb    $0x10,0x2dc(%rsi)
80 c9 80                                      | or     $0x80,%cl
80 e4 f3                                      | and    $0xf3,%ah
80 f9 01                                      | cmp    $0x1,%cl
81 49 2c 00 00 04 00                          | orl    $0x40000,0x2c(%rcx)
81 66 7c ff df ff ff                          | andl   $0xffffdfff,0x7c(%rsi)
81 80 bc 00 00 00 00 01 00 00                 | addl   $0x100,0xbc(%rax)
81 a3 28 ff ff ff ff ff ff fb                 | andl   $0xfbffffff,-0xd8(%rbx)
81 f6 ab d9 83 1f                             | xor    $0x1f83d9ab,%esi
83 46 08 01                                   | addl   $0x1,0x8(%rsi)
83 4a 70 04                                   | orl    $0x4,0x70(%rdx)
83 67 20 df                                   | andl   $0xffffffdf,0x20(%rdi)
83 a3 88 09 00 00 03                          | andl   $0x3,0x988(%rbx)
83 c0 01                                      | add    $0x1,%eax
83 d6 00                                      | adc    $0x0,%esi
83 d9 ff                                      | sbb    $0xffffffff,%ecx
83 f2 01                                      | xor    $0x1,%edx
84 ca                                         | test   %cl,%dl
85 c0                                         | test   %eax,%eax
85 dd                                         | test   %ebx,%ebp
85 df                                         | test   %ebx,%edi
85 e8                                         | test   %ebp,%eax
85 f8                                         | test   %edi,%eax
87 70 18                                      | xchg   %esi,0x18(%rax)
88 11                                         | mov    %dl,(%rcx)
88 2c 02                                      | mov    %ch,(%rdx,%rax,1)
88 5e 51                                      | mov    %bl,0x51(%rsi)
88 88 78 e8 2e 83                             | mov    %cl,-0x7cd11788(%rax)
88 8c 24 60 01 00 00                          | mov    %cl,0x160(%rsp)
88 9d 18 ff ff ff                             | mov    %bl,-0xe8(%rbp)
88 ce                                         | mov    %cl,%dh
88 d8                                         | mov    %bl,%al
89 14 24                                      | mov    %edx,(%rsp)
89 38                                         | mov    %edi,(%rax)
89 3e                                         | mov    %edi,(%rsi)
89 8f 08 e9 2b 83                             | mov    %ecx,-0x7cd416f8(%rdi)
89 9f a4 00 00 00                             | mov    %ebx,0xa4(%rdi)
89 d2                                         | mov    %edx,%edx
8a 4b 2f                                      | mov    0x2f(%rbx),%cl
8b 00                                         | mov    (%rax),%eax
8b 1a                                         | mov    (%rdx),%ebx
8b 91 30 09 00 00                             | mov    0x930(%rcx),%edx
8b a9 00 01 00 00                             | mov    0x100(%rcx),%ebp
8b b5 10 02 00 00                             | mov    0x210(%rbp),%esi
8d 4f 0f                                      | lea    0xf(%rdi),%ecx
8d 50 ff                                      | lea    -0x1(%rax),%edx
8d 58 ff                                      | lea    -0x1(%rax),%ebx
8d 86 04 ff ff ff                             | lea    -0xfc(%rsi),%eax
8d b3 6b ff ff ff                             | lea    -0x95(%rbx),%esi
a8 0a                                         | test   $0xa,%al
a8 0c                                         | test   $0xc,%al
a8 7f                                         | test   $0x7f,%al
a8 aa                                         | test   $0xaa,%al
a9 0c e2 2c 00                                | test   $0x2ce20c,%eax
a9 9e 08 0c 00                                | test   $0xc089e,%eax
a9 f2 ff 00 00                                | test   $0xfff2,%eax
a9 fb ff ff ff                                | test   $0xfffffffb,%eax
b8 01 00 00 80                                | mov    $0x80000001,%eax
b8 12 00 00 00                                | mov    $0x12,%eax
b8 42 00 00 00                                | mov    $0x42,%eax
b8 66 90 ff ff                                | mov    $0xffff9066,%eax
b8 96 ff ff ff                                | mov    $0xffffff96,%eax
b8 a2 ff ff ff                                | mov    $0xffffffa2,%eax
b8 c2 ff ff ff                                | mov    $0xffffffc2,%eax
b8 d6 ff ff ff                                | mov    $0xffffffd6,%eax
b8 f1 ff ff ff                                | mov    $0xfffffff1,%eax
b9 11 44 00 04                                | mov    $0x4004411,%ecx
b9 14 00 00 00                                | mov    $0x14,%ecx
b9 21 00 00 00                                | mov    $0x21,%ecx
b9 26 00 00 00                                | mov    $0x26,%ecx
b9 50 00 00 00                                | mov    $0x50,%ecx
b9 63 00 00 00                                | mov    $0x63,%ecx
b9 9c 0f 00 00                                | mov    $0xf9c,%ecx
b9 9d ff ff ff                                | mov    $0xffffff9d,%ecx
b9 d0 ff ff ff                                | mov    $0xffffffd0,%ecx
ba 4a 04 00 00                                | mov    $0x44a,%edx
ba 52 01 00 00                                | mov    $0x152,%edx
ba 5e fe ff ff                                | mov    $0xfffffe5e,%edx
ba 62 00 00 00                                | mov    $0x62,%edx
ba 82 03 00 00                                | mov    $0x382,%edx
ba 83 03 00 00                                | mov    $0x383,%edx
ba e7 ff ff ff                                | mov    $0xffffffe7,%edx
ba f0 0f ff ff                                | mov    $0xffff0ff0,%edx
bb 13 00 00 00                                | mov    $0x13,%ebx
bb 3d 00 00 00                                | mov    $0x3d,%ebx
bb 8f ff ff ff                                | mov    $0xffffff8f,%ebx
bb a6 ff ff ff                                | mov    $0xffffffa6,%ebx
bb d2 ff ff ff                                | mov    $0xffffffd2,%ebx
bb de ff ff ff                                | mov    $0xffffffde,%ebx
bd 54 00 00 00                                | mov    $0x54,%ebp
bd 62 00 00 00                                | mov    $0x62,%ebp
bd 64 00 00 00                                | mov    $0x64,%ebp
bd a0 01 00 00                                | mov    $0x1a0,%ebp
bd b6 ff ff ff                                | mov    $0xffffffb6,%ebp
bd da ff ff ff                                | mov    $0xffffffda,%ebp
bd fa ff ff ff                                | mov    $0xfffffffa,%ebp
be 05 00 00 00                                | mov    $0x5,%esi
be 17 00 00 00                                | mov    $0x17,%esi
be 2c 00 00 00                                | mov    $0x2c,%esi
be 40 00 00 00                                | mov    $0x40,%esi
be 4c 00 00 00                                | mov    $0x4c,%esi
be 6a 0c 00 00                                | mov    $0xc6a,%esi
be 6b 00 00 00                                | mov    $0x6b,%esi
be 71 04 00 00                                | mov    $0x471,%esi
be 7a 0b 00 00                                | mov    $0xb7a,%esi
be 88 00 00 00                                | mov    $0x88,%esi
be 90 00 00 00                                | mov    $0x90,%esi
be 98 00 00 00                                | mov    $0x98,%esi
be a0 01 00 00                                | mov    $0x1a0,%esi
be a4 01 00 00                                | mov    $0x1a4,%esi
be cb 01 00 00                                | mov    $0x1cb,%esi
be f8 04 00 00                                | mov    $0x4f8,%esi
bf 14 00 00 00                                | mov    $0x14,%edi
bf 29 03 00 00                                | mov    $0x329,%edi
bf 2c 00 00 00                                | mov    $0x2c,%edi
bf 64 00 00 00                                | mov    $0x64,%edi
bf 69 00 00 00                                | mov    $0x69,%edi
bf 82 00 00 c0                                | mov    $0xc0000082,%edi
bf 8b 04 00 00                                | mov    $0x48b,%edi
bf 94 00 00 00                                | mov    $0x94,%edi
bf ab aa aa aa                                | mov    $0xaaaaaaab,%edi
bf b1 01 00 00                                | mov    $0x1b1,%edi
bf cf 14 00 00                                | mov    $0x14cf,%edi
bf d6 0c 00 00                                | mov    $0xcd6,%edi
bf e3 53 00 00                                | mov    $0x53e3,%edi
c1 c0 0e                                      | rol    $0xe,%eax
c1 ce 07                                      | ror    $0x7,%esi
c1 eb 17                                      | shr    $0x17,%ebx
c6 01 e9                                      | movb   $0xe9,(%rcx)
c6 84 90 04 01 00 00 00                       | movb   $0x0,0x104(%rax,%rdx,4)
c7 41 01 48 81 c4 00                          | movl   $0xc48148,0x1(%rcx)
d1 e8                                         | shr    %eax
d1 ff                                         | sar    %edi
d3 ef                                         | shr    %cl,%edi
e4 64                                         | in     $0x64,%al
e8 64 39 a0 00                                | call   0xffffffff81a13850
e8 6b 70 08 00                                | call   0xffffffff81088910
e8 78 5e 25 00                                | call   0xffffffff81257c90
e8 a9 5c df 00                                | call   0xffffffff81e008a8
e8 d8 8d 9b 00                                | call   0xffffffff819c37c0
e8 dd fa ff ff                                | call   0xffffffff81001440
e9 02 06 36 00                                | jmp    0xffffffff81364250
e9 42 ed df 00                                | jmp    0xffffffff81e01ef0
e9 9d f0 38 00                                | jmp    0xffffffff81393570
e9 ae 0e e0 00                                | jmp    0xffffffff81e01ef0
e9 ba fd ff ff                                | jmp    0xffffffff81002963
e9 de c9 3a 00                                | jmp    0xffffffff813b0130
e9 ee fe ff ff                                | jmp    0xffffffff810079f2
e9 fc f7 df 00                                | jmp    0xffffffff81e01ef0
e9 ff fe ff ff                                | jmp    0xffffffff810024b4
eb 09                                         | jmp    0xffffffff81004ea4
eb 23                                         | jmp    0xffffffff8100ae61
eb 33                                         | jmp    0xffffffff8101c8c2
eb 58                                         | jmp    0xffffffff8102020c
eb 79                                         | jmp    0xffffffff8111a204
eb 80                                         | jmp    0xffffffff810086b7
eb cc                                         | jmp    0xffffffff810083cb
eb ce                                         | jmp    0xffffffff81002141
eb d4                                         | jmp    0xffffffff8100021a
eb dc                                         | jmp    0xffffffff81005199
eb f4                                         | jmp    0xffffffff8103d019
f0 01 5d 08                                   | lock add %ebx,0x8(%rbp)
f0 01 82 b8 00 00 00                          | lock add %eax,0xb8(%rdx)
f0 09 43 50                                   | lock or %eax,0x50(%rbx)
f0 09 6b 50                                   | lock or %ebp,0x50(%rbx)
f0 0f b1 8b b0 01 00 00                       | lock cmpxchg %ecx,0x1b0(%rbx)
f0 0f c1 14 8e                                | lock xadd %edx,(%rsi,%rcx,4)
f0 0f c1 42 08                                | lock xadd %eax,0x8(%rdx)
f0 29 53 54                                   | lock sub %edx,0x54(%rbx)
f0 41 01 44 24 34                             | lock add %eax,0x34(%r12)
f0 41 0f b1 54 24 1c                          | lock cmpxchg %edx,0x1c(%r12)
f0 41 0f b1 5c 24 6c                          | lock cmpxchg %ebx,0x6c(%r12)
f0 41 29 86 48 01 00 00                       | lock sub %eax,0x148(%r14)
f0 41 80 4e 01 20                             | lock orb $0x20,0x1(%r14)
f0 41 80 8e f9 01 00 00 80                    | lock orb $0x80,0x1f9(%r14)
f0 41 80 a0 d8 00 00 00 fb                    | lock andb $0xfb,0xd8(%r8)
f0 41 81 4c 24 58 00 00 02 00                 | lock orl $0x20000,0x58(%r12)
f0 44 01 6b 34                                | lock add %r13d,0x34(%rbx)
f0 44 0f b1 06                                | lock cmpxchg %r8d,(%rsi)
f0 44 0f b1 0a                                | lock cmpxchg %r9d,(%rdx)
f0 48 01 18                                   | lock add %rbx,(%rax)
f0 48 01 88 00 01 00 00                       | lock add %rcx,0x100(%rax)
f0 48 0f b1 11                                | lock cmpxchg %rdx,(%rcx)
f0 48 0f b1 95 58 0c 00 00                    | lock cmpxchg %rdx,0xc58(%rbp)
f0 48 0f b3 11                                | lock btr %rdx,(%rcx)
f0 48 0f c1 88 e0 02 00 00                    | lock xadd %rcx,0x2e0(%rax)
f0 48 0f c1 95 e0 02 00 00                    | lock xadd %rdx,0x2e0(%rbp)
f0 48 83 82 c8 00 00 00 ff                    | lock addq $0xffffffffffffffff,0xc8(%rdx)
f0 48 ff 4f 38                                | lock decq 0x38(%rdi)
f0 49 0f ba 77 f8 01                          | lock btrq $0x1,-0x8(%r15)
f0 49 29 6e 10                                | lock sub %rbp,0x10(%r14)
f0 49 ff 8e d0 00 00 00                       | lock decq 0xd0(%r14)
f0 4a ff 04 23                                | lock incq (%rbx,%r12,1)
f0 4c 01 90 d0 00 00 00                       | lock add %r10,0xd0(%rax)
f0 4e 01 04 dd 40 95 a0 82                    | lock add %r8,-0x7d5f6ac0(,%r11,8)
f0 80 0a 08                                   | lock orb $0x8,(%rdx)
f0 80 26 fd                                   | lock andb $0xfd,(%rsi)
f0 80 63 08 fd                                | lock andb $0xfd,0x8(%rbx)
f0 80 88 30 09 00 00 01                       | lock orb $0x1,0x930(%rax)
f0 81 03 00 02 00 00                          | lock addl $0x200,(%rbx)
f0 83 28 02                                   | lock subl $0x2,(%rax)
f3 48 0f bc 48 10                             | tzcnt  0x10(%rax),%rcx
f3 48 0f bc f3                                | tzcnt  %rbx,%rsi
f3 49 0f bc 8c 24 90 00 00 00                 | tzcnt  0x90(%r12),%rcx
f3 49 0f bc d7                                | tzcnt  %r15,%rdx
f4                                            | hlt
f6 43 20 40                                   | testb  $0x40,0x20(%rbx)
f6 c3 05                                      | test   $0x5,%bl
f7 43 2c 10 00 20 00                          | testl  $0x200010,0x2c(%rbx)
f7 44 24 04 e0 01 00 00                       | testl  $0x1e0,0x4(%rsp)
f7 47 2c 10 00 20 00                          | testl  $0x200010,0x2c(%rdi)
f7 c1 00 00 40 00                             | test   $0x400000,%ecx
ff cb                                         | dec    %ebx
"""

/// The corpus as byte arrays.
let kernelEncodings: [[UInt8]] = kernelCorpus.split(separator: "\n").map { line in
    line.split(separator: "|")[0].split(separator: " ").compactMap { UInt8($0, radix: 16) }
}
