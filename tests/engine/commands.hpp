// Builders for engine commands in tests: one line per operation, with readable defaults.
#pragma once

#include <cstdint>

#include "engine/command.hpp"

namespace jifen::engine::test {

// 2026-01-15T00:00:00Z: mid-month, so a test can move within the month or across it.
inline constexpr TimeUs t0_us = 1'768'435'200ull * 1'000'000ull;
inline constexpr TimeUs day_us = 86'400ull * 1'000'000ull;
inline constexpr TimeUs minute_us = 60ull * 1'000'000ull;

inline TxnId txn(uint64_t lo, uint64_t hi = 7) { return TxnId{lo, hi}; }

inline Command make(Op op, uint64_t txn_lo, MemberId member_id, Points points, TimeUs time_us) {
    Command command;
    command.op = op;
    command.txn_id = txn(txn_lo);
    command.member_id = member_id;
    command.points = points;
    command.time_us = time_us;
    return command;
}

inline Command enroll(uint64_t txn_lo, MemberId member_id, TimeUs time_us = t0_us) {
    return make(Op::enroll, txn_lo, member_id, 0, time_us);
}
inline Command earn(uint64_t txn_lo, MemberId member_id, Points points, TimeUs time_us = t0_us) {
    return make(Op::earn, txn_lo, member_id, points, time_us);
}
inline Command earn_pending(uint64_t txn_lo, MemberId member_id, Points points, TimeUs time_us,
                            TimeUs until_us) {
    Command command = make(Op::earn, txn_lo, member_id, points, time_us);
    command.until_us = until_us;
    return command;
}
inline Command redeem(uint64_t txn_lo, MemberId member_id, Points points, TimeUs time_us = t0_us) {
    return make(Op::redeem, txn_lo, member_id, points, time_us);
}
inline Command hold(uint64_t txn_lo, MemberId member_id, Points points, TimeUs time_us = t0_us,
                    TimeUs until_us = 0) {
    Command command = make(Op::hold, txn_lo, member_id, points, time_us);
    command.until_us = until_us;
    return command;
}
inline Command capture(uint64_t txn_lo, MemberId member_id, uint64_t hold_lo, Points points,
                       TimeUs time_us = t0_us) {
    Command command = make(Op::capture, txn_lo, member_id, points, time_us);
    command.ref_txn_id = txn(hold_lo);
    return command;
}
inline Command release(uint64_t txn_lo, MemberId member_id, uint64_t hold_lo,
                       TimeUs time_us = t0_us) {
    Command command = make(Op::release, txn_lo, member_id, 0, time_us);
    command.ref_txn_id = txn(hold_lo);
    return command;
}
inline Command reverse(uint64_t txn_lo, MemberId member_id, uint64_t target_lo,
                       TimeUs time_us = t0_us) {
    Command command = make(Op::reverse, txn_lo, member_id, 0, time_us);
    command.ref_txn_id = txn(target_lo);
    return command;
}
inline Command transfer(uint64_t txn_lo, MemberId from, MemberId to, Points points,
                        TimeUs time_us = t0_us) {
    Command command = make(Op::transfer, txn_lo, from, points, time_us);
    command.counterparty_id = to;
    return command;
}
inline Command adjust(uint64_t txn_lo, MemberId member_id, Points points, bool debit,
                      TimeUs time_us = t0_us) {
    Command command = make(Op::adjust, txn_lo, member_id, points, time_us);
    command.flags = debit ? adjust_debit : 0;
    return command;
}
inline Command update(uint64_t txn_lo, MemberId member_id, MemberStatus status, uint8_t tier,
                      uint32_t birthday, TimeUs time_us = t0_us) {
    Command command = make(Op::update_member, txn_lo, member_id, 0, time_us);
    command.status = status;
    command.tier = tier;
    command.birthday = birthday;
    return command;
}
inline Command tick(Points budget, TimeUs time_us) {
    Command command;
    command.op = Op::tick;
    command.points = budget;
    command.time_us = time_us;
    return command;
}

}  // namespace jifen::engine::test
