// The client against a scripted in-process server: HELLO first, replies matched by request_id in
// any order, batching, error frames, timeouts, and resend-with-the-same-txn-id after a lost link.
#include "client/client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "client/async_client.hpp"
#include "tests/client/fake_server.hpp"

namespace jifen::client {
namespace {

using protocol::Opcode;
using testing::FakeServer;
using testing::Frame;
using testing::tcp;

Options options_for(const FakeServer& server) {
    Options options;
    options.port = server.port();
    options.api_key = "test-key";
    options.client_name = "client-test";
    options.connect_timeout = std::chrono::seconds(5);
    options.request_timeout = std::chrono::seconds(5);
    options.reconnect_attempts = 0;
    options.reconnect_backoff = std::chrono::milliseconds(1);
    return options;
}

// Answers every item of a frame with ok, the reply's `field` set to the item's member id.
template <class Request, class Reply>
void answer_with_member_ids(tcp::socket& socket, const Frame& frame, int64_t Reply::*field) {
    std::vector<Reply> replies(frame.header.count);
    for (size_t index = 0; index < replies.size(); ++index) {
        replies[index].*field = static_cast<int64_t>(frame.item<Request>(index).member_id);
    }
    testing::write_items(socket, frame, std::span<const Reply>(replies));
}

// Answers every operation of an operation frame with ok and points = member id.
void answer_operations(tcp::socket& socket, const Frame& frame) {
    answer_with_member_ids<protocol::Operation>(socket, frame, &protocol::OperationReply::points);
}

// A connection that answers every operation (see answer_operations) and notes, in order, the
// member of each operation it received.
FakeServer::Script answer_noting_members(std::vector<uint64_t>* members) {
    return [members](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        while (testing::read_frame(socket, &frame)) {
            for (size_t item = 0; item < frame.header.count; ++item) {
                members->push_back(frame.item<protocol::Operation>(item).member_id);
            }
            answer_operations(socket, frame);
        }
    };
}

TEST(Client, HelloIsTheFirstFrameAndCarriesKeyAndName) {
    protocol::HelloRequest seen;
    Frame first_after_hello;
    FakeServer server({[&](tcp::socket& socket) {
        seen = testing::answer_hello(socket, "", 3);
        testing::read_frame(socket, &first_after_hello);
        protocol::PingReply reply{12345};
        testing::write_items(socket, first_after_hello,
                             std::span<const protocol::PingReply>(&reply, 1));
        Frame ignored;
        testing::read_frame(socket, &ignored);
    }});
    Client client(options_for(server));
    client.connect();
    EXPECT_EQ(client.hello().shard_count, 3u);
    EXPECT_EQ(client.ping().server_time_us, 12345u);
    client.close();
    EXPECT_EQ(std::string_view(seen.api_key), "test-key");
    EXPECT_EQ(std::string_view(seen.client_name), "client-test");
    EXPECT_EQ(seen.protocol_version, protocol::protocol_version);
    EXPECT_EQ(first_after_hello.header.opcode, static_cast<uint16_t>(Opcode::ping));
}

TEST(Client, RefusedHelloThrowsAnErrorNamingAuthFailed) {
    FakeServer server({[&](tcp::socket& socket) { testing::answer_hello(socket, "other-key"); }});
    Client client(options_for(server));
    try {
        client.connect();
        FAIL() << "connect succeeded with a wrong key";
    } catch (const Error& error) {
        EXPECT_EQ(error.failure(), Failure::refused);
        EXPECT_EQ(error.result(), Result::auth_failed);
        EXPECT_NE(std::string(error.what()).find("auth_failed"), std::string::npos);
    }
}

TEST(Client, AZeroTxnIdIsReplacedAndASetOneIsSentAsIs) {
    std::vector<protocol::Operation> seen;
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        while (testing::read_frame(socket, &frame)) {
            seen.push_back(frame.item<protocol::Operation>(0));
            answer_operations(socket, frame);
        }
    }});
    Client client(options_for(server));
    client.connect();
    const auto generated = client.earn(make_earn(42, 100));
    EXPECT_EQ(generated.points, 42);
    auto fixed = make_redeem(43, 5);
    set_txn_id(&fixed, TxnId{7, 9});
    EXPECT_EQ(client.redeem(fixed).points, 43);
    client.close();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_FALSE(txn_id_of(seen[0]).is_zero());
    EXPECT_EQ(seen[0].points, 100);
    EXPECT_EQ(txn_id_of(seen[1]), (TxnId{7, 9}));
}

TEST(Client, ABatchLargerThanTheServersLimitIsSplitAndRepliesKeepTheirOrder) {
    std::vector<uint16_t> counts;
    FakeServer server({[&](tcp::socket& socket) {
        Frame hello;
        testing::read_frame(socket, &hello);
        protocol::HelloReply reply;
        reply.batch_ops_max = 4;
        testing::write_items(socket, hello, std::span<const protocol::HelloReply>(&reply, 1));
        Frame frame;
        while (testing::read_frame(socket, &frame)) {
            counts.push_back(frame.header.count);
            answer_operations(socket, frame);
        }
    }});
    Client client(options_for(server));
    client.connect();
    std::vector<protocol::Operation> operations;
    for (uint64_t member = 1; member <= 10; ++member) {
        operations.push_back(make_earn(member, 1));
    }
    const auto replies = client.submit(Opcode::earn, operations);
    client.close();
    ASSERT_EQ(replies.size(), 10u);
    for (size_t index = 0; index < replies.size(); ++index) {
        EXPECT_EQ(replies[index].points, static_cast<int64_t>(index + 1));
        EXPECT_FALSE(txn_id_of(operations[index]).is_zero()) << "ids are filled in place";
    }
    EXPECT_EQ(counts, (std::vector<uint16_t>{4, 4, 2}));
}

TEST(Client, AnErrorFrameThrowsItsResultAndTheConnectionStaysUsable) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        testing::read_frame(socket, &frame);
        testing::write_error(socket, frame.header.request_id, Result::forbidden,
                             "key scope does not allow reverse");
        testing::read_frame(socket, &frame);
        answer_operations(socket, frame);
        testing::read_frame(socket, &frame);
    }});
    Client client(options_for(server));
    client.connect();
    try {
        client.reverse(make_reverse(TxnId{1, 1}, 5));
        FAIL() << "forbidden was not thrown";
    } catch (const Error& error) {
        EXPECT_EQ(error.failure(), Failure::refused);
        EXPECT_EQ(error.result(), Result::forbidden);
        EXPECT_EQ(error.status().message, "key scope does not allow reverse");
    }
    EXPECT_EQ(client.earn(make_earn(9, 1)).points, 9);
}

TEST(Client, ALostConnectionIsResentWithTheSameTxnId) {
    protocol::Operation first_try;
    protocol::Operation second_try;
    FakeServer server({[&](tcp::socket& socket) {
                           testing::answer_hello(socket);
                           Frame frame;
                           testing::read_frame(socket, &frame);
                           first_try = frame.item<protocol::Operation>(0);
                           // Close without replying: the client cannot know whether it applied.
                       },
                       [&](tcp::socket& socket) {
                           testing::answer_hello(socket);
                           Frame frame;
                           testing::read_frame(socket, &frame);
                           second_try = frame.item<protocol::Operation>(0);
                           std::vector<protocol::OperationReply> replies(1);
                           replies[0].flags = protocol::reply_flag_replayed;
                           testing::write_items(socket, frame,
                                                std::span<const protocol::OperationReply>(replies));
                           testing::read_frame(socket, &frame);
                       }});
    Options options = options_for(server);
    options.reconnect_attempts = 2;
    Client client(options);
    client.connect();
    const auto reply = client.earn(make_earn(11, 50));
    client.close();
    EXPECT_EQ(reply.flags, protocol::reply_flag_replayed);
    EXPECT_FALSE(txn_id_of(first_try).is_zero());
    EXPECT_EQ(txn_id_of(first_try), txn_id_of(second_try));
    EXPECT_EQ(second_try.member_id, 11u);
}

TEST(Client, AFrameRefusedAsShuttingDownIsResentOnANewConnection) {
    protocol::Operation first_try;
    protocol::Operation second_try;
    FakeServer server({[&](tcp::socket& socket) {
                           testing::answer_hello(socket);
                           Frame frame;
                           testing::read_frame(socket, &frame);
                           first_try = frame.item<protocol::Operation>(0);
                           testing::write_error(socket, frame.header.request_id,
                                                Result::shutting_down, "the server is stopping");
                           testing::read_frame(socket, &frame);  // Until the client hangs up.
                       },
                       [&](tcp::socket& socket) {
                           testing::answer_hello(socket);
                           Frame frame;
                           testing::read_frame(socket, &frame);
                           second_try = frame.item<protocol::Operation>(0);
                           answer_operations(socket, frame);
                           testing::read_frame(socket, &frame);
                       }});
    Options options = options_for(server);
    options.reconnect_attempts = 1;
    Client client(options);
    client.connect();
    EXPECT_EQ(client.earn(make_earn(12, 5)).points, 12);
    client.close();
    EXPECT_EQ(txn_id_of(first_try), txn_id_of(second_try));
}

TEST(Client, NoReplyWithinTheRequestTimeoutThrowsTimeout) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        testing::read_frame(socket, &frame);
        testing::read_frame(socket, &frame);  // Returns when the client gives up and closes.
    }});
    Options options = options_for(server);
    options.request_timeout = std::chrono::milliseconds(100);
    Client client(options);
    client.connect();
    try {
        client.ping();
        FAIL() << "no timeout";
    } catch (const Error& error) {
        EXPECT_EQ(error.failure(), Failure::timeout);
    }
}

TEST(Client, ConnectingToAClosedPortThrowsConnectFailure) {
    uint16_t port = 0;
    {
        boost::asio::io_context io;
        tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
        port = acceptor.local_endpoint().port();
    }
    Options options;
    options.port = port;
    options.reconnect_attempts = 0;
    Client client(options);
    try {
        client.connect();
        FAIL() << "connected to a closed port";
    } catch (const Error& error) {
        EXPECT_EQ(error.failure(), Failure::connect);
    }
}

// ---- AsyncClient ------------------------------------------------------------------------------

TEST(AsyncClient, OperationsSubmittedInOneTurnLeaveInOneFrame) {
    std::vector<uint16_t> counts;
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        while (testing::read_frame(socket, &frame)) {
            counts.push_back(frame.header.count);
            answer_operations(socket, frame);
        }
    }});
    boost::asio::io_context io;
    AsyncOptions options;
    static_cast<Options&>(options) = options_for(server);
    AsyncClient client(io, options);
    std::vector<int64_t> points;
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        for (uint64_t member = 1; member <= 10; ++member) {
            ASSERT_TRUE(client.submit(
                Opcode::earn, make_earn(member, 1),
                [&](const Status& reply_status, const protocol::OperationReply& reply) {
                    EXPECT_TRUE(reply_status.ok());
                    points.push_back(reply.points);
                    if (points.size() == 10) {
                        client.close();
                    }
                }));
        }
    });
    io.run();
    EXPECT_EQ(points, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
    EXPECT_EQ(counts, (std::vector<uint16_t>{10}));
}

TEST(AsyncClient, TheLastHandlerOfABatchSeesNothingOutstanding) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        while (testing::read_frame(socket, &frame)) {
            answer_operations(socket, frame);
        }
    }});
    boost::asio::io_context io;
    AsyncOptions options;
    static_cast<Options&>(options) = options_for(server);
    AsyncClient client(io, options);
    std::vector<size_t> outstanding_seen;
    client.async_connect([&](const Status&) {
        for (uint64_t member = 1; member <= 3; ++member) {
            client.submit(Opcode::earn, make_earn(member, 1),
                          [&](const Status&, const protocol::OperationReply&) {
                              outstanding_seen.push_back(client.operations_outstanding());
                              if (client.operations_outstanding() == 0) {
                                  client.close();
                              }
                          });
        }
    });
    io.run();
    EXPECT_EQ(outstanding_seen, (std::vector<size_t>{2, 1, 0}));
}

TEST(AsyncClient, RepliesInAnyOrderReachTheirOwnOperations) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        std::vector<Frame> frames(3);
        for (Frame& frame : frames) {
            testing::read_frame(socket, &frame);
        }
        for (size_t index = frames.size(); index > 0; --index) {
            answer_operations(socket, frames[index - 1]);
        }
        Frame ignored;
        testing::read_frame(socket, &ignored);
    }});
    boost::asio::io_context io;
    AsyncOptions options;
    static_cast<Options&>(options) = options_for(server);
    options.batch_ops_max = 1;  // One frame per operation.
    AsyncClient client(io, options);
    std::vector<std::pair<uint64_t, int64_t>> seen;
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok());
        for (uint64_t member = 1; member <= 3; ++member) {
            client.submit(
                Opcode::earn, make_earn(member, 1),
                [&, member](const Status& reply_status, const protocol::OperationReply& reply) {
                    EXPECT_TRUE(reply_status.ok());
                    seen.emplace_back(member, reply.points);
                    if (seen.size() == 3) {
                        client.close();
                    }
                });
        }
    });
    io.run();
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0], (std::pair<uint64_t, int64_t>{3, 3})) << "the last frame was answered first";
    for (const auto& [member, points] : seen) {
        EXPECT_EQ(static_cast<int64_t>(member), points);
    }
}

TEST(AsyncClient, AnErrorFrameFailsOnlyTheOperationsOfItsFrame) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame earn;
        Frame reverse;
        testing::read_frame(socket, &earn);
        testing::read_frame(socket, &reverse);
        testing::write_error(socket, reverse.header.request_id, Result::busy, "inbox full");
        answer_operations(socket, earn);
        Frame ignored;
        testing::read_frame(socket, &ignored);
    }});
    boost::asio::io_context io;
    AsyncOptions options;
    static_cast<Options&>(options) = options_for(server);
    AsyncClient client(io, options);
    Status earn_status{Failure::protocol, Result::ok, ""};
    Status reverse_status;
    int done = 0;
    client.async_connect([&](const Status&) {
        client.submit(Opcode::earn, make_earn(5, 1),
                      [&](const Status& status, const protocol::OperationReply&) {
                          earn_status = status;
                          if (++done == 2) {
                              client.close();
                          }
                      });
        client.submit(Opcode::reverse, make_reverse(TxnId{1, 2}, 5),
                      [&](const Status& status, const protocol::OperationReply&) {
                          reverse_status = status;
                          if (++done == 2) {
                              client.close();
                          }
                      });
    });
    io.run();
    EXPECT_TRUE(earn_status.ok());
    EXPECT_EQ(reverse_status.failure, Failure::refused);
    EXPECT_EQ(reverse_status.result, Result::busy);
}

TEST(AsyncClient, AServerCloseFailsEveryOutstandingOperationAsClosed) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        testing::read_frame(socket, &frame);
    }});
    boost::asio::io_context io;
    AsyncOptions options;
    static_cast<Options&>(options) = options_for(server);
    AsyncClient client(io, options);
    std::vector<Failure> failures;
    client.async_connect([&](const Status&) {
        for (uint64_t member = 1; member <= 4; ++member) {
            client.submit(Opcode::earn, make_earn(member, 1),
                          [&](const Status& status, const protocol::OperationReply&) {
                              failures.push_back(status.failure);
                          });
        }
    });
    io.run();
    EXPECT_EQ(failures, (std::vector<Failure>(4, Failure::closed)));
    EXPECT_EQ(client.operations_outstanding(), 0u);
}

TEST(AsyncClient, SubmitRefusesWhenTheWindowAndQueueAreFull) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        while (testing::read_frame(socket, &frame)) {
        }
    }});
    boost::asio::io_context io;
    AsyncOptions options;
    static_cast<Options&>(options) = options_for(server);
    options.batch_ops_max = 2;
    options.frames_in_flight_max = 1;
    AsyncClient client(io, options);
    size_t accepted = 0;
    client.async_connect([&](const Status&) {
        // The client owns frames_in_flight_max + 11 batches (one filling per batchable opcode);
        // once all are full or in flight, submit says no instead of growing a queue.
        while (client.submit(Opcode::earn, make_earn(1, 1),
                             [](const Status&, const protocol::OperationReply&) {})) {
            ++accepted;
            if (accepted > 100) {
                break;
            }
        }
        client.close();
    });
    io.run();
    EXPECT_EQ(accepted, (1u + 11u) * 2u);
}

// ---- AsyncClient reconnecting -------------------------------------------------------------------

AsyncOptions reconnecting_options_for(const FakeServer& server, uint32_t reconnect_attempts) {
    AsyncOptions options;
    static_cast<Options&>(options) = options_for(server);
    options.reconnect_attempts = reconnect_attempts;
    return options;
}

// Answers every balance query of a balance frame with available = member id.
void answer_balances(tcp::socket& socket, const Frame& frame) {
    answer_with_member_ids<protocol::BalanceRequest>(socket, frame,
                                                     &protocol::BalanceReply::available);
}

TEST(AsyncClient, AConnectionFoundLostInsideSubmitFailsItsOperationsAfterSubmitReturns) {
    FakeServer server({[&](tcp::socket& socket) {
        testing::answer_hello(socket);  // Then closes while the client has nothing in flight.
    }});
    boost::asio::io_context io;
    AsyncOptions options = reconnecting_options_for(server, 0);
    options.batch_ops_max = 2;  // The second submit fills a frame and sends it at once.
    AsyncClient client(io, options);
    bool inside_submit = false;
    std::vector<Status> failures;
    boost::asio::steady_timer wait_for_close(io);
    const auto submit_two = [&] {
        inside_submit = true;
        for (uint64_t member = 1; member <= 2; ++member) {
            client.submit(Opcode::earn, make_earn(member, 1),
                          [&](const Status& status, const protocol::OperationReply&) {
                              EXPECT_FALSE(inside_submit) << "a handler ran inside submit()";
                              failures.push_back(status);
                          });
        }
        inside_submit = false;
    };
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        // Time for the client to read the server's close; either way submit must return first.
        wait_for_close.expires_after(std::chrono::milliseconds(100));
        wait_for_close.async_wait([&](const boost::system::error_code&) { submit_two(); });
    });
    io.run();
    ASSERT_EQ(failures.size(), 2u);
    for (const Status& status : failures) {
        EXPECT_FALSE(status.ok());
    }
}

TEST(AsyncClient, FramesWithoutAReplyAreResentWithTheSameTxnIdsOnANewConnection) {
    std::vector<TxnId> first_ids;
    std::vector<TxnId> second_ids;
    size_t balances_asked_again = 0;
    FakeServer server(
        {[&](tcp::socket& socket) {
             testing::answer_hello(socket);
             Frame frame;
             for (int frame_index = 0; frame_index < 2; ++frame_index) {
                 testing::read_frame(socket, &frame);
                 if (frame.header.opcode == static_cast<uint16_t>(Opcode::earn)) {
                     for (size_t item = 0; item < frame.header.count; ++item) {
                         first_ids.push_back(txn_id_of(frame.item<protocol::Operation>(item)));
                     }
                 }
             }
             // Close without replying: the client cannot know what was applied.
         },
         [&](tcp::socket& socket) {
             testing::answer_hello(socket);
             Frame frame;
             while (testing::read_frame(socket, &frame)) {
                 if (frame.header.opcode == static_cast<uint16_t>(Opcode::balance)) {
                     balances_asked_again += frame.header.count;
                     answer_balances(socket, frame);
                     continue;
                 }
                 std::vector<protocol::OperationReply> replies(frame.header.count);
                 for (size_t item = 0; item < replies.size(); ++item) {
                     second_ids.push_back(txn_id_of(frame.item<protocol::Operation>(item)));
                     replies[item].flags = protocol::reply_flag_replayed;
                 }
                 testing::write_items(socket, frame,
                                      std::span<const protocol::OperationReply>(replies));
             }
         }});
    boost::asio::io_context io;
    AsyncClient client(io, reconnecting_options_for(server, 3));
    std::vector<int> earn_completions(3, 0);
    std::vector<uint32_t> earn_flags(3, 0);
    int64_t balance_seen = 0;
    const auto finish_when_done = [&] {
        if (client.operations_outstanding() == 0) {
            client.close();
        }
    };
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        for (uint64_t member = 1; member <= 3; ++member) {
            ASSERT_TRUE(client.submit(
                Opcode::earn, make_earn(member, 1),
                [&, member](const Status& reply_status, const protocol::OperationReply& reply) {
                    EXPECT_TRUE(reply_status.ok()) << reply_status.to_string();
                    ++earn_completions[member - 1];
                    earn_flags[member - 1] = reply.flags;
                    finish_when_done();
                }));
        }
        ASSERT_TRUE(client.balance(
            77, [&](const Status& reply_status, const protocol::BalanceReply& reply) {
                EXPECT_TRUE(reply_status.ok()) << reply_status.to_string();
                balance_seen = reply.available;
                finish_when_done();
            }));
    });
    io.run();
    EXPECT_EQ(earn_completions, (std::vector<int>{1, 1, 1}));
    EXPECT_EQ(earn_flags, (std::vector<uint32_t>(3, protocol::reply_flag_replayed)));
    ASSERT_EQ(first_ids.size(), 3u);
    EXPECT_EQ(second_ids, first_ids) << "the same transaction ids, in the same order";
    EXPECT_EQ(balances_asked_again, 1u);
    EXPECT_EQ(balance_seen, 77);
}

TEST(AsyncClient, AfterAReconnectUnansweredFramesGoFirstInTheirOrderAndAnsweredOnesNotAgain) {
    std::vector<uint64_t> second_connection_members;
    FakeServer server({[&](tcp::socket& socket) {
                           testing::answer_hello(socket);
                           Frame first;
                           Frame second;
                           testing::read_frame(socket, &first);
                           testing::read_frame(socket, &second);
                           answer_operations(socket, second);
                           Frame third;  // Sent once the answer freed a slot in the window.
                           testing::read_frame(socket, &third);
                       },
                       answer_noting_members(&second_connection_members)});
    boost::asio::io_context io;
    AsyncOptions options = reconnecting_options_for(server, 3);
    options.batch_ops_max = 1;  // One frame per operation.
    options.frames_in_flight_max = 2;
    AsyncClient client(io, options);
    std::vector<uint64_t> completed;
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        for (uint64_t member = 1; member <= 4; ++member) {
            ASSERT_TRUE(client.submit(
                Opcode::earn, make_earn(member, 1),
                [&, member](const Status& reply_status, const protocol::OperationReply& reply) {
                    EXPECT_TRUE(reply_status.ok()) << reply_status.to_string();
                    EXPECT_EQ(reply.points, static_cast<int64_t>(member));
                    completed.push_back(member);
                    if (client.operations_outstanding() == 0) {
                        client.close();
                    }
                }));
        }
    });
    io.run();
    EXPECT_EQ(second_connection_members, (std::vector<uint64_t>{1, 3, 4}));
    EXPECT_EQ(completed, (std::vector<uint64_t>{2, 1, 3, 4}));
}

TEST(AsyncClient, WhenReconnectingFailsEveryOperationCompletesOnceAsClosed) {
    const auto accept_and_hang_up = [](tcp::socket&) {};
    FakeServer server({[&](tcp::socket& socket) {
                           testing::answer_hello(socket);
                           Frame frame;
                           testing::read_frame(socket, &frame);
                       },
                       accept_and_hang_up, accept_and_hang_up});
    boost::asio::io_context io;
    AsyncClient client(io, reconnecting_options_for(server, 2));
    std::vector<Status> statuses;
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        for (uint64_t member = 1; member <= 2; ++member) {
            client.submit(Opcode::earn, make_earn(member, 1),
                          [&](const Status& reply_status, const protocol::OperationReply&) {
                              statuses.push_back(reply_status);
                          });
            client.flush();
        }
    });
    io.run();
    ASSERT_EQ(statuses.size(), 2u);
    for (const Status& status : statuses) {
        EXPECT_EQ(status.failure, Failure::closed) << status.to_string();
        EXPECT_NE(status.message.find("2 reconnect attempts failed"), std::string::npos)
            << status.message;
    }
    EXPECT_EQ(client.operations_outstanding(), 0u);
    EXPECT_FALSE(client.submit(Opcode::earn, make_earn(3, 1),
                               [](const Status&, const protocol::OperationReply&) {}))
        << "after giving up the client takes nothing until async_connect";
}

TEST(AsyncClient, AFrameIsSentAtMostReconnectAttemptsTimesMore) {
    int times_sent = 0;
    const auto read_one_frame_and_hang_up = [&](tcp::socket& socket) {
        testing::answer_hello(socket);
        Frame frame;
        if (testing::read_frame(socket, &frame)) {
            ++times_sent;
        }
    };
    FakeServer server(
        {read_one_frame_and_hang_up, read_one_frame_and_hang_up, read_one_frame_and_hang_up});
    boost::asio::io_context io;
    AsyncClient client(io, reconnecting_options_for(server, 2));
    Status final_status;
    int completions = 0;
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        client.submit(Opcode::earn, make_earn(1, 1),
                      [&](const Status& reply_status, const protocol::OperationReply&) {
                          final_status = reply_status;
                          ++completions;
                          client.close();
                      });
    });
    io.run();
    EXPECT_EQ(completions, 1);
    EXPECT_EQ(times_sent, 3);
    EXPECT_EQ(final_status.failure, Failure::closed);
    EXPECT_NE(final_status.message.find("sent 3 times"), std::string::npos) << final_status.message;
}

TEST(AsyncClient, AsyncConnectWhileConnectedCarriesOutstandingOperationsOver) {
    std::vector<uint64_t> second_connection_members;
    FakeServer server({[&](tcp::socket& socket) {
                           testing::answer_hello(socket);
                           Frame frame;
                           while (testing::read_frame(socket, &frame)) {
                           }
                       },
                       answer_noting_members(&second_connection_members)});
    boost::asio::io_context io;
    AsyncClient client(io, reconnecting_options_for(server, 1));
    std::vector<uint64_t> completed;
    const auto earn = [&](uint64_t member) {
        return client.submit(
            Opcode::earn, make_earn(member, 1),
            [&, member](const Status& reply_status, const protocol::OperationReply&) {
                EXPECT_TRUE(reply_status.ok()) << reply_status.to_string();
                completed.push_back(member);
                if (client.operations_outstanding() == 0) {
                    client.close();
                }
            });
    };
    Status second_connect{Failure::protocol, Result::ok, "not called"};
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        ASSERT_TRUE(earn(1));
        client.flush();
        client.async_connect([&](const Status& reconnected) { second_connect = reconnected; });
        EXPECT_TRUE(earn(2)) << "operations are taken while connecting";
    });
    io.run();
    EXPECT_TRUE(second_connect.ok()) << second_connect.to_string();
    EXPECT_EQ(second_connection_members, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(completed, (std::vector<uint64_t>{1, 2}));
}

TEST(AsyncClient, FramesRefusedAsShuttingDownWaitForTheServerAndGoToTheNextConnection) {
    std::vector<uint64_t> second_connection_members;
    FakeServer server({[&](tcp::socket& socket) {
                           testing::answer_hello(socket);
                           Frame started;
                           Frame not_started;
                           testing::read_frame(socket, &started);
                           testing::read_frame(socket, &not_started);
                           // Stopping: refuse what was read but not started, answer the rest.
                           testing::write_error(socket, not_started.header.request_id,
                                                Result::shutting_down, "the server is stopping");
                           answer_operations(socket, started);
                           Frame ignored;
                           testing::read_frame(socket, &ignored);  // Until the client hangs up.
                       },
                       answer_noting_members(&second_connection_members)});
    boost::asio::io_context io;
    AsyncOptions options = reconnecting_options_for(server, 2);
    options.batch_ops_max = 1;
    AsyncClient client(io, options);
    std::vector<uint64_t> completed;
    client.async_connect([&](const Status& status) {
        ASSERT_TRUE(status.ok()) << status.to_string();
        for (uint64_t member = 1; member <= 2; ++member) {
            ASSERT_TRUE(client.submit(
                Opcode::earn, make_earn(member, 1),
                [&, member](const Status& reply_status, const protocol::OperationReply&) {
                    EXPECT_TRUE(reply_status.ok()) << reply_status.to_string();
                    completed.push_back(member);
                    if (client.operations_outstanding() == 0) {
                        client.close();
                    }
                }));
        }
    });
    io.run();
    EXPECT_EQ(completed, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(second_connection_members, (std::vector<uint64_t>{2}));
}

}  // namespace
}  // namespace jifen::client
