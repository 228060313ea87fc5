// The Kotlin side of the binding-overhead measurement: one same-chain
// message (Alice's send and Bob's receive, after the session is
// established) through the generated bindings and JNA, timed exactly as
// examples/overhead.rs times the Rust Device: the p10 (and median) of the
// per-message time over many short batches.
package org.sessionratchet.tests

import org.sessionratchet.*

object Overhead {
    @JvmStatic
    fun main(args: Array<String>) {
        val batches = args.getOrNull(0)?.toInt() ?: 300
        val perBatch = maxOf(1, args.getOrNull(1)?.toInt() ?: 20)
        val now = 1_767_225_600uL
        val key = ByteArray(32) { 7 }
        val info = { name: String -> DeviceInfo(Platform.UNSPECIFIED, name, ClientVersion(0u, 0u, 0u)) }
        val alice = createAccount(MemoryStore().recordStore(), key, info("alice"), now).device
        val bob = createAccount(MemoryStore().recordStore(), key, info("bob"), now).device
        alice.addContact(bob.sessionId(), bob.deviceList(), bob.prekeyRecord())
        bob.addContact(alice.sessionId(), alice.deviceList(), alice.prekeyRecord())
        val aliceKey = alice.accountKey()
        val bobKey = bob.accountKey()
        // Establish the session both ways, so what follows is one chain.
        for (out in alice.send(bobKey, "hello".toByteArray(), now)) bob.receive(out.bytes)
        for (out in bob.send(aliceKey, "hello back".toByteArray(), now)) alice.receive(out.bytes)
        val content = ByteArray(64) { 0x61 }
        var sink = 0
        fun one() {
            for (out in alice.send(bobKey, content, now)) sink += bob.receive(out.bytes).content.size
        }
        // Warm-up: the JIT compiles the generated converters first.
        repeat(perBatch * 50) { one() }
        val perMessage = DoubleArray(batches)
        for (b in 0 until batches) {
            val t = System.nanoTime()
            repeat(perBatch) { one() }
            perMessage[b] = (System.nanoTime() - t).toDouble() / perBatch
        }
        perMessage.sort()
        val p10 = perMessage[perMessage.size * 10 / 100]
        val median = perMessage[perMessage.size / 2]
        if (sink == 0) println("(no content)")
        println("kotlin: p10 %.0f ns/message, median %.0f ns/message (%d batches of %d)".format(p10, median, batches, perBatch))
    }
}
