// Builders for the mutating operations: each returns a protocol::Operation with exactly the fields
// its opcode uses (docs/protocol.md has the table) and a zero txn id, which the client replaces by
// a fresh random one when sent. Set one with set_txn_id() to make a retry safe across processes.
#pragma once

#include <cstdint>

#include "client/txn_id.hpp"
#include "protocol/wire.hpp"

namespace jifen::client {

struct PosFields {
    uint32_t store_id = 0;
    uint32_t merchant_id = 0;
    uint64_t order_ref = 0;
    uint32_t reason_code = 0;
};

protocol::Operation make_enroll(uint64_t member_id, uint32_t birthday_yyyymmdd = 0,
                                uint8_t tier = 0);
protocol::Operation make_update_member(uint64_t member_id, uint32_t birthday_yyyymmdd, uint8_t tier,
                                       bool frozen);
// pending_us > 0: the points stay pending that long before they can be spent.
protocol::Operation make_earn(uint64_t member_id, int64_t points, uint64_t pending_us = 0,
                              PosFields pos = {});
protocol::Operation make_redeem(uint64_t member_id, int64_t points, PosFields pos = {});
// timeout_us 0: the server's default hold timeout. The hold id is the operation's txn id.
protocol::Operation make_hold(uint64_t member_id, int64_t points, uint64_t timeout_us = 0,
                              PosFields pos = {});
// points 0: capture the whole hold. member_id 0 lets the server find the hold's member.
protocol::Operation make_capture(TxnId hold_txn_id, int64_t points = 0, uint64_t member_id = 0,
                                 PosFields pos = {});
protocol::Operation make_release(TxnId hold_txn_id, uint64_t member_id = 0);
protocol::Operation make_reverse(TxnId txn_id_to_undo, uint64_t member_id = 0,
                                 uint32_t reason_code = 0);
protocol::Operation make_transfer(uint64_t from_member_id, uint64_t to_member_id, int64_t points,
                                  uint32_t reason_code = 0);
protocol::Operation make_adjust(uint64_t member_id, int64_t points, bool debit,
                                uint32_t reason_code = 0);

}  // namespace jifen::client
