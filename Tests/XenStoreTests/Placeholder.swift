import Testing
@testable import XenStore
@Test func placeholder() {}
