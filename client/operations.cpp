// Builders for the mutating operations (field use per opcode: docs/protocol.md).
#include "client/operations.hpp"

namespace jifen::client {

namespace {

void apply_pos(protocol::Operation* operation, const PosFields& pos) {
    operation->store_id = pos.store_id;
    operation->merchant_id = pos.merchant_id;
    operation->order_ref = pos.order_ref;
    operation->reason_code = pos.reason_code;
}

}  // namespace

protocol::Operation make_enroll(uint64_t member_id, uint32_t birthday_yyyymmdd, uint8_t tier) {
    protocol::Operation operation;
    operation.member_id = member_id;
    operation.birthday = birthday_yyyymmdd;
    operation.tier = tier;
    return operation;
}

protocol::Operation make_update_member(uint64_t member_id, uint32_t birthday_yyyymmdd, uint8_t tier,
                                       bool frozen) {
    protocol::Operation operation = make_enroll(member_id, birthday_yyyymmdd, tier);
    operation.status = frozen ? 1 : 0;
    return operation;
}

protocol::Operation make_earn(uint64_t member_id, int64_t points, uint64_t pending_us,
                              PosFields pos) {
    protocol::Operation operation;
    operation.member_id = member_id;
    operation.points = points;
    operation.duration_us = pending_us;
    apply_pos(&operation, pos);
    return operation;
}

protocol::Operation make_redeem(uint64_t member_id, int64_t points, PosFields pos) {
    return make_earn(member_id, points, 0, pos);
}

protocol::Operation make_hold(uint64_t member_id, int64_t points, uint64_t timeout_us,
                              PosFields pos) {
    return make_earn(member_id, points, timeout_us, pos);
}

protocol::Operation make_capture(TxnId hold_txn_id, int64_t points, uint64_t member_id,
                                 PosFields pos) {
    protocol::Operation operation;
    set_ref_txn_id(&operation, hold_txn_id);
    operation.member_id = member_id;
    operation.points = points;
    apply_pos(&operation, pos);
    return operation;
}

protocol::Operation make_release(TxnId hold_txn_id, uint64_t member_id) {
    protocol::Operation operation;
    set_ref_txn_id(&operation, hold_txn_id);
    operation.member_id = member_id;
    return operation;
}

protocol::Operation make_reverse(TxnId txn_id_to_undo, uint64_t member_id, uint32_t reason_code) {
    protocol::Operation operation;
    set_ref_txn_id(&operation, txn_id_to_undo);
    operation.member_id = member_id;
    operation.reason_code = reason_code;
    return operation;
}

protocol::Operation make_transfer(uint64_t from_member_id, uint64_t to_member_id, int64_t points,
                                  uint32_t reason_code) {
    protocol::Operation operation;
    operation.member_id = from_member_id;
    operation.counterparty_id = to_member_id;
    operation.points = points;
    operation.reason_code = reason_code;
    return operation;
}

protocol::Operation make_adjust(uint64_t member_id, int64_t points, bool debit,
                                uint32_t reason_code) {
    protocol::Operation operation;
    operation.member_id = member_id;
    operation.points = points;
    operation.flags = debit ? 1 : 0;
    operation.reason_code = reason_code;
    return operation;
}

}  // namespace jifen::client
