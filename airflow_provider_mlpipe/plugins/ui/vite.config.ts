// Builds the view as one UMD file that the Airflow 3 UI can load as a plugin React app.
//
// The Airflow UI imports `bundle_url` with a dynamic import() and then takes the component from
// `globalThis.AirflowPlugin` (the UMD global named below). It puts its own React, ReactDOM, JSX
// runtime, React Router, Chakra UI and Emotion on globalThis (React, ReactDOM, ReactJSXRuntime,
// ReactRouterDOM, ChakraUI, EmotionReact) for plugins to share: the view uses those, so it renders
// inside the UI's React tree with the UI's Chakra theme (light and dark) and router, and the bundle
// holds only the view's own code.
import { defineConfig } from "vite";

const sharedWithAirflowUi: Record<string, string> = {
  react: "React",
  "react-dom": "ReactDOM",
  "react/jsx-runtime": "ReactJSXRuntime",
  "react-router-dom": "ReactRouterDOM",
  "@chakra-ui/react": "ChakraUI",
  "@emotion/react": "EmotionReact",
};

export default defineConfig({
  build: {
    emptyOutDir: true,
    lib: {
      entry: "src/main.tsx",
      fileName: () => "selective-run.js",
      formats: ["umd"],
      name: "AirflowPlugin",
    },
    minify: true,
    outDir: "dist",
    rollupOptions: {
      external: Object.keys(sharedWithAirflowUi),
      output: { globals: sharedWithAirflowUi },
    },
    target: "es2022",
  },
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
});
