// The browser side of tests/events/test_browser_tracking.py: the official Segment SDK
// (@segment/analytics-next), configured as a Sodate user would, sends one page view to Sodate.
//
// page.html?key=<tracking write key>&api=<host:port of Sodate>[&protocol=http]
//
// Settings are given inline (`cdnSettings`), so the SDK never fetches them from Segment's CDN,
// and the "Segment.io" destination's `apiHost` points at Sodate's tracking API (`/v1`).
// When the page view was accepted, the anonymous id is written to
// <body data-anonymous-id="..."> (and the HTTP status to data-tracking-status) for the test to read.
import { AnalyticsBrowser } from '@segment/analytics-next'

const params = new URLSearchParams(window.location.search)
const writeKey = params.get('key') ?? ''
const apiHost = `${params.get('api') ?? window.location.host}/v1`
const protocol = params.get('protocol') ?? 'http'
const body = document.body

// Records what the SDK's own fetch calls to the tracking API answered; the SDK itself is unchanged.
const responses = []
const nativeFetch = window.fetch.bind(window)
window.fetch = async (input, init) => {
  const url = typeof input === 'string' ? input : input.url
  try {
    const response = await nativeFetch(input, init)
    responses.push({ url, status: response.status })
    return response
  } catch (error) {
    responses.push({ url, status: 0, error: String(error) })
    throw error
  }
}

function report(state, detail) {
  body.dataset.trackingState = state
  if (detail !== undefined) body.dataset.trackingDetail = detail
  body.dataset.trackingRequests = JSON.stringify(responses)
}

async function main() {
  if (!writeKey) throw new Error('missing ?key=<tracking write key>')
  const [analytics] = await AnalyticsBrowser.load(
    {
      writeKey,
      cdnSettings: {
        integrations: {
          'Segment.io': { apiKey: writeKey, apiHost, protocol },
        },
        // No performance metrics (they would go to `${apiHost}/m`).
        metrics: { sampleRate: 0 },
      },
    },
    {
      // Also where the SDK's own metrics client would send to, instead of api.segment.io.
      integrations: { 'Segment.io': { apiHost, protocol } },
      // One attempt: a failure shows at once in the page instead of being retried later.
      retryQueue: false,
    },
  )
  const ctx = await analytics.page('Browser test', { section: 'tests' })
  const failure = ctx.failedDelivery()
  const page = responses.find((r) => /\/v1\/(p|page)$/.test(r.url))
  if (failure || !page || page.status < 200 || page.status >= 300) {
    report('failed', failure ? String(failure.reason) : `page request: ${JSON.stringify(page)}`)
    return
  }
  body.dataset.trackingStatus = String(page.status)
  body.dataset.anonymousId = analytics.user().anonymousId() ?? ''
  report('delivered')
}

main().catch((error) => report('error', String(error && error.stack ? error.stack : error)))
