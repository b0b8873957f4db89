// The package ships no types; its output is validated with zod where it is read (pod-counters.ts).
declare module 'parse-prometheus-text-format' {
  function parsePrometheusTextFormat(text: string): unknown;
  export default parsePrometheusTextFormat;
}
