// libFuzzer entry point for the frame decoder (built with clang: tests/fuzz/run.sh).
// Inputs whose first byte is odd get their checksums rewritten first, so both the checksum
// checks and everything behind them are explored.
#include <vector>

#include "tests/fuzz/frame_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 0 && (data[0] & 1u) != 0) {
        std::vector<uint8_t> copy(data + 1, data + size);
        jifen::fuzz::reseal_frames(copy.data(), copy.size());
        (void)jifen::fuzz::decode_stream(copy.data(), copy.size());
        return 0;
    }
    (void)jifen::fuzz::decode_stream(data, size);
    return 0;
}
