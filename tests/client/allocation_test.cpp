// The pipelined client allocates nothing per operation once warmed up: a counting global
// operator new, switched on only for the io thread during the measured window.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <memory>
#include <new>

#include "client/async_client.hpp"
#include "tests/client/fake_server.hpp"

// Replacing operator new/delete with malloc/free is exactly what this file does; GCC 12 cannot see
// that the replaced pair matches and warns at every inlined new/delete in this file.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
thread_local bool counting_allocations = false;
thread_local size_t allocations_counted = 0;
}  // namespace

void* operator new(size_t size) {
    if (counting_allocations) {
        ++allocations_counted;
    }
    if (void* memory = std::malloc(size == 0 ? 1 : size)) {
        return memory;
    }
    throw std::bad_alloc();
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, size_t) noexcept { std::free(memory); }

namespace jifen::client {
namespace {

using protocol::Opcode;
using testing::FakeServer;
using testing::Frame;
using testing::tcp;

TEST(AsyncClientAllocation, TheCounterSeesAnAllocation) {
    allocations_counted = 0;
    counting_allocations = true;
    auto value = std::make_unique<int>(1);
    counting_allocations = false;
    EXPECT_EQ(allocations_counted, 1u);
    EXPECT_EQ(*value, 1);
}

TEST(AsyncClientAllocation, SteadyStateSubmitsAllocateNothing) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        std::vector<protocol::OperationReply> replies;
        while (testing::read_frame(socket, &frame)) {
            replies.assign(frame.header.count, {});
            testing::write_items(socket, frame, std::span<const protocol::OperationReply>(replies));
        }
    }});
    boost::asio::io_context io;
    AsyncOptions options;
    options.port = server.port();
    options.batch_ops_max = 64;
    options.frames_in_flight_max = 8;
    AsyncClient client(io, options);
    constexpr size_t warm_up_ops = 5'000;
    constexpr size_t measured_ops = 50'000;
    size_t completed = 0;
    size_t submitted = 0;
    size_t allocations_in_window = 0;
    // A plain function pointer target keeps the handler inside std::function's inline buffer.
    struct Loop {
        AsyncClient* client;
        size_t* completed;
        size_t* submitted;
        size_t* allocations_in_window;
        void submit_more() {
            while (*submitted < warm_up_ops + measured_ops) {
                Loop* self = this;
                if (!client->submit(Opcode::earn, make_earn(1 + *submitted % 100, 1),
                                    [self](const Status&, const protocol::OperationReply&) {
                                        self->on_reply();
                                    })) {
                    return;
                }
                ++*submitted;
            }
        }
        void on_reply() {
            ++*completed;
            if (*completed == warm_up_ops) {
                allocations_counted = 0;
                counting_allocations = true;
            }
            if (*completed == warm_up_ops + measured_ops) {
                counting_allocations = false;
                *allocations_in_window = allocations_counted;
                client->close();
                return;
            }
            submit_more();
        }
    } loop{&client, &completed, &submitted, &allocations_in_window};
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        loop.submit_more();
    });
    io.run();
    EXPECT_EQ(completed, warm_up_ops + measured_ops);
    EXPECT_EQ(allocations_in_window, 0u);
}

}  // namespace
}  // namespace jifen::client
