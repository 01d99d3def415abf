// Preloaded into the processes of a local Ray cluster: a bind() to the wildcard address
// (0.0.0.0 or ::) becomes a bind() to loopback, except for the ports listed in
// $TALKING_HEAD_PUBLIC_PORTS (the Serve proxies, which bind where their config says).
// Ray Serve's replicas open an inter-deployment gRPC server on [::]:0 with no host setting;
// anyone who reaches it calls the deployments without an API key.
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>

namespace {

bool is_public(unsigned port) {
    const char* s = std::getenv("TALKING_HEAD_PUBLIC_PORTS");
    if (s == nullptr || port == 0) return false;
    while (*s != '\0') {
        char* end = nullptr;
        long p = std::strtol(s, &end, 10);
        if (end == s) {
            ++s;
            continue;
        }
        if (p == static_cast<long>(port)) return true;
        s = end;
    }
    return false;
}

using BindFn = int (*)(int, const sockaddr*, socklen_t);

}  // namespace

extern "C" int bind(int fd, const sockaddr* addr, socklen_t len) {
    static BindFn real = reinterpret_cast<BindFn>(dlsym(RTLD_NEXT, "bind"));
    if (addr != nullptr && addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
        sockaddr_in a;
        std::memcpy(&a, addr, sizeof a);
        if (a.sin_addr.s_addr == htonl(INADDR_ANY) && !is_public(ntohs(a.sin_port))) {
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
        }
    } else if (addr != nullptr && addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
        sockaddr_in6 a;
        std::memcpy(&a, addr, sizeof a);
        if (std::memcmp(&a.sin6_addr, &in6addr_any, sizeof a.sin6_addr) == 0 && !is_public(ntohs(a.sin6_port))) {
            a.sin6_addr = in6addr_loopback;
            return real(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
        }
    }
    return real(fd, addr, len);
}
