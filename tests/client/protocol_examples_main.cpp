// Prints docs/protocol.md's example frames as Markdown blocks (paste them into the document).
#include <iostream>

#include "tests/client/protocol_examples.hpp"

int main() {
    for (const auto& example : jifen::testing::protocol_examples()) {
        std::cout << "<!-- example: " << example.name << " -->\n```text\n"
                  << jifen::testing::hex_dump(example.bytes) << "```\n\n";
    }
}
