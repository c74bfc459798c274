// Invariant checks for the engine and everything built on it.
// JIFEN_ASSERT stays on in release builds (cheap checks: the touched member's sums, index bounds);
// JIFEN_DASSERT is for expensive checks and compiles away unless NDEBUG is off or JIFEN_DASSERTS.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace jifen::detail {

#if !defined(NDEBUG) || defined(JIFEN_DASSERTS)
inline constexpr bool dasserts_enabled = true;
#else
inline constexpr bool dasserts_enabled = false;
#endif

// A broken invariant means the state can no longer be trusted: stop before it is logged or served.
[[noreturn]] inline void assert_failed(const char* expression, const char* file,
                                       int line) noexcept {
    std::fprintf(stderr, "jifen: assertion failed: %s at %s:%d\n", expression, file, line);
    std::abort();
}

}  // namespace jifen::detail

#define JIFEN_ASSERT(expression)                                             \
    do {                                                                     \
        if (__builtin_expect(!(expression), 0)) {                            \
            ::jifen::detail::assert_failed(#expression, __FILE__, __LINE__); \
        }                                                                    \
    } while (false)

#if !defined(NDEBUG) || defined(JIFEN_DASSERTS)
#define JIFEN_DASSERT(expression) JIFEN_ASSERT(expression)
#else
#define JIFEN_DASSERT(expression) \
    do {                          \
        (void)sizeof(expression); \
    } while (false)
#endif
