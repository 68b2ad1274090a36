/* SPDX-License-Identifier: BSD-2-Clause */
/* send_sizes.c - the sender's CPU (user + system) per MiB for send() calls
 * of one TLS record each (4 KiB, 8 KiB, 16 KiB of plaintext + 29 bytes of
 * TLS 1.2 ChaCha20-Poly1305 / 22 bytes of TLS 1.3 overhead) over loopback
 * TCP to a reader process that discards: what MBEDTLS_SSL_OUT_CONTENT_LEN
 * costs in the kernel, since tlsterm sends each record of an established
 * connection with its own send().
 *
 * usage: send_sizes [MiB-per-size]   (default 256; run it on an idle machine) */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static double
cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int
main(int argc, char **argv)
{
    static const size_t sizes[] = { 4096 + 29, 8192 + 29, 16384 + 29 };
    static char buf[16384 + 64];
    long mib = argc > 1 ? atol(argv[1]) : 256;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int one = 1;

    for (size_t s = 0; s < 3; s++) {
        int l = socket(AF_INET, SOCK_STREAM, 0), c, r;
        pid_t pid;
        long total = mib << 20, sent = 0, calls = 0;
        double t0;

        a.sin_port = 0;
        if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
            getsockname(l, (struct sockaddr *)&a, &al))
            return 1;
        if ((pid = fork()) == 0) {
            char rb[65536];

            c = accept(l, NULL, NULL);
            while (read(c, rb, sizeof(rb)) > 0)
                ;
            _exit(0);
        }
        c = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c, (struct sockaddr *)&a, sizeof(a)))
            return 1;
        t0 = cpu();
        while (sent < total) {
            r = (int)send(c, buf, sizes[s], 0);
            if (r <= 0)
                return 1;
            sent += r;
            calls++;
        }
        printf("record\t%zu\tsends\t%ld\tsender_cpu_ms_per_MiB\t%.3f\n", sizes[s], calls,
               (cpu() - t0) * 1e3 / mib);
        close(c);
        close(l);
        waitpid(pid, NULL, 0);
    }
    return 0;
}
