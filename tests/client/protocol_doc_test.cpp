// docs/protocol.md's hex examples equal the frames the real structs and CRC32C produce, so the
// document cannot drift from the wire.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "tests/client/protocol_examples.hpp"

namespace jifen::testing {
namespace {

// Every "<!-- example: NAME -->" followed by a fenced block of offset-prefixed hex lines.
std::map<std::string, std::vector<std::byte>> examples_in_document(const std::string& text) {
    std::map<std::string, std::vector<std::byte>> examples;
    std::istringstream lines(text);
    std::string line;
    std::string name;
    bool in_block = false;
    const std::string marker = "<!-- example: ";
    while (std::getline(lines, line)) {
        if (line.rfind(marker, 0) == 0) {
            name = line.substr(marker.size(), line.find(" -->") - marker.size());
            examples[name];
            continue;
        }
        if (!name.empty() && line.rfind("```", 0) == 0) {
            if (in_block) {
                name.clear();
            }
            in_block = !in_block;
            continue;
        }
        if (in_block) {
            std::istringstream words(line);
            std::string word;
            words >> word;  // The offset.
            while (words >> word) {
                examples[name].push_back(static_cast<std::byte>(std::stoul(word, nullptr, 16)));
            }
        }
    }
    return examples;
}

TEST(ProtocolDoc, EveryHexExampleMatchesTheRealEncoding) {
    std::ifstream file(std::string(JIFEN_SOURCE_DIR) + "/docs/protocol.md");
    ASSERT_TRUE(file) << "docs/protocol.md not found";
    std::stringstream text;
    text << file.rdbuf();
    const auto documented = examples_in_document(text.str());
    const auto expected = protocol_examples();
    ASSERT_EQ(documented.size(), expected.size());
    for (const ExampleFrame& example : expected) {
        const auto found = documented.find(example.name);
        ASSERT_NE(found, documented.end()) << "missing example " << example.name;
        EXPECT_EQ(found->second, example.bytes) << example.name << " should be:\n"
                                                << hex_dump(example.bytes);
    }
}

TEST(ProtocolDoc, ExamplesPassTheReceiversChecks) {
    for (const ExampleFrame& example : protocol_examples()) {
        protocol::FrameHeader header;
        std::memcpy(&header, example.bytes.data(), sizeof(header));
        EXPECT_EQ(protocol::check_header(header), Result::ok) << example.name;
        const std::span<const std::byte> body(example.bytes.data() + sizeof(header),
                                              example.bytes.size() - sizeof(header));
        EXPECT_EQ(protocol::check_body(header, body), Result::ok) << example.name;
    }
}

}  // namespace
}  // namespace jifen::testing
